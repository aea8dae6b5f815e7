import { createServer, connect, type Socket } from 'node:net';
import type { Test } from 'tap';

const PUBACK = 4;

/**
 * A TCP proxy in front of an MQTT broker that forwards everything except the PUBACKs the client
 * sends: the client believes it acknowledged, the broker never hears it. A process killed behind
 * it is in the state "stored and published, not acknowledged" for every message it handled.
 */
export async function startPubackSwallowingProxy(t: Test, brokerUrl: string): Promise<{ url: string; swallowed(): number }> {
  const broker = new URL(brokerUrl);
  let swallowed = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(broker.port || 1883), broker.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const length = packetLength(pending);
        if (length === undefined || pending.length < length) return;
        const packet = pending.subarray(0, length);
        pending = pending.subarray(length);
        if (packet[0]! >> 4 === PUBACK) swallowed++;
        else upstream.write(packet);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const { port } = server.address() as { port: number };
  return { url: `mqtt://127.0.0.1:${port}`, swallowed: () => swallowed };
}

/** Bytes of the whole MQTT packet at the start of `buf` (fixed header + remaining length), or undefined if not all there yet. */
function packetLength(buf: Buffer): number | undefined {
  let remaining = 0;
  for (let i = 1; i <= 4; i++) {
    if (buf.length <= i) return undefined;
    const byte = buf[i]!;
    remaining += (byte & 0x7f) * 128 ** (i - 1);
    if ((byte & 0x80) === 0) return 1 + i + remaining;
  }
  throw new Error('malformed MQTT remaining length');
}
