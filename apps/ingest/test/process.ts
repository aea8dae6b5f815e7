import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import mqtt from 'mqtt';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, eventually, metricSample, uniqueId } from '@iotsupport/testkit';

/** The built app, as a deployment runs it. */
export const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface IngestProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>` of the internal listener. */
  url: string;
  exited: Promise<number | null>;
  /** A metric from /metrics, its series summed (0 when absent). */
  metric(name: string): Promise<number>;
}

/** Starts `node apps/ingest/dist/src/main.js` with `env` and waits until /health/readyz is 200. */
export async function startIngestProcess(t: Test, env: Record<string, string>): Promise<IngestProcess> {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', REDIS_URL: LOCAL_REDIS_URL, MQTT_URL: LOCAL_MQTT_URL, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const address = await eventually<string | undefined>(() => /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1], 15_000).catch((err: unknown) => {
    throw new Error(`ingest did not start: ${String(err)}\n${out}`);
  });
  if (!address) throw new Error('unreachable: eventually returned a falsy address');
  await eventually(async () => (await fetch(`${address}/health/readyz`)).status === 200, 15_000);
  return {
    child,
    url: address,
    exited,
    async metric(name) {
      return metricSample(await (await fetch(`${address}/metrics`)).text(), name);
    },
  };
}

/** A QoS 1 publisher; each payload is `lines` NDJSON lines tagged with its message number. */
export async function startPublisher(t: Test, topic: string) {
  const client = await mqtt.connectAsync(LOCAL_MQTT_URL, { clientId: uniqueId('pub'), protocolVersion: 5 });
  t.teardown(() => client.endAsync());
  const payloads: string[] = [];
  return {
    payloads,
    async publish(count: number, lines: number, gapMs = 5) {
      for (let i = 0; i < count; i++) {
        const n = payloads.length;
        const payload = Array.from({ length: lines }, (_, l) => JSON.stringify({ entity_id: `e${n % 5}`, message: `message ${n} line ${l}`, n, l })).join('\n');
        payloads.push(payload);
        await client.publishAsync(topic, payload, { qos: 1 });
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    },
  };
}
