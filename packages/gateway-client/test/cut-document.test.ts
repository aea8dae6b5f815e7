import t from 'tap';
import { Registry } from 'prom-client';
import { GatewayClient, MAX_SEND_BODY_BYTES, cutDocument, escapedDataBytes, eventDataBudget } from '../src/index.js';
import { startFakeGateway } from './fake-gateway.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** 1-, 2-, 3- and 4-byte UTF-8 characters (the last a surrogate pair), and characters JSON escapes. */
const MIX = 'aé€😀"\\\n🇫🇷';

t.test('a 100 kB+ document is cut on a character boundary at every alignment, and keeps its identity', async (t) => {
  const gateway = await startFakeGateway();
  const client = new GatewayClient({ baseUrl: gateway.url, concurrency: 2, timeoutMs: 2000, retries: 0, queueLimit: 100, registry: new Registry() });
  t.teardown(async () => {
    await client.destroy();
    await gateway.close();
  });
  const head = '{"device_entity_id":"dev-1","logs":[';
  const room = eventDataBudget('device-logs') - escapedDataBytes(head + ']}');
  // Each shift moves every character across the cut point by one more code point.
  const shifts = [...MIX].length + 4;
  for (let shift = 0; shift < shifts; shift++) {
    const token = `tok-${shift}`;
    gateway.connect(token);
    const message = 'x'.repeat(shift) + MIX.repeat(20_000);
    const doc = { entity_id: 'dev-1', level: 'error', '@timestamp': '2026-12-05T06:00:00.000Z', message, other: 'dropped' };
    const json = JSON.stringify(doc);
    t.ok(Buffer.byteLength(json) > 100_000);
    const cut = cutDocument(doc, json, room, { entityField: 'entity_id', id: `id-${shift}` });
    t.equal((await client.send(token, { name: 'device-logs', data: `${head}${cut}]}` })).status, 'ok');

    const [received] = gateway.forToken(token);
    t.ok(received!.bytes <= MAX_SEND_BODY_BYTES, 'the body is within the limit');
    t.notOk(received!.raw.includes('\uFFFD'), 'no replacement character: every UTF-8 sequence is whole');
    const arrived = (JSON.parse(received!.event!.data) as { logs: Array<Record<string, unknown>> }).logs[0]!;
    const text = arrived.message as string;
    t.notOk(LONE_SURROGATE.test(text), `shift ${shift}: no half surrogate pair`);
    t.ok(message.startsWith(text), 'the message arrives as a prefix of the original');
    const next = String.fromCodePoint(message.codePointAt(text.length)!);
    t.ok(escapedDataBytes(JSON.stringify({ ...arrived, message: text + next })) > room, 'as much as fits: one more character would not');
    t.same(
      { ...arrived, message: undefined },
      { _id: `id-${shift}`, entity_id: 'dev-1', level: 'error', '@timestamp': '2026-12-05T06:00:00.000Z', truncated: true, original_bytes: Buffer.byteLength(json), message: undefined },
      'id, entity id, level and @timestamp kept beside truncated / original_bytes',
    );
  }
});
