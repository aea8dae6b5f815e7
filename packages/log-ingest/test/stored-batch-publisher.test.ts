import t from 'tap';
import { Redis } from 'ioredis';
import { decodeLogChannelMessage, logChannelName, logChannelPattern } from '@iotsupport/contracts';
import { LOCAL_REDIS_URL, deleteRedisPrefix, eventually, metricValue, uniqueRedisPrefix } from '@iotsupport/testkit';
import { deviceStreamKeys, readAfterCursor, streamRetention } from '@iotsupport/log-stream';
import { STORED_BATCH_MAX_DOCS_BYTES, StoredBatchPublisher, storedBatchMessages, parseMqttMessage, type ParsedMessage } from '../src/index.js';
import { freshMetrics, messageText, silentLogger } from './helpers.js';

const OPTS = { indexPrefix: 'logs-', entityField: 'entity_id' };
const RETENTION = streamRetention({ LOG_STREAM_MAX_LINES: 1000, LOG_STREAM_MAX_AGE_SECONDS: 600, INGEST_MAX_INFLIGHT: 64, INGEST_SESSION_EXPIRY_SECONDS: 3600 });

async function message(receivedAtMs: number, ...docs: object[]): Promise<ParsedMessage> {
  return parseMqttMessage(Buffer.from(docs.map((d) => JSON.stringify(d)).join('\n')), receivedAtMs, OPTS);
}

t.test('per message, per entity, in line order; lines without entity are not streamed', async (t) => {
  const m1 = await message(1000, { entity_id: 'a', message: '1' }, { entity_id: 'b', message: '2' }, { message: 'no entity' }, { entity_id: 'a', message: '3' });
  const m2 = await message(2000, { entity_id: 'a', message: '4' });
  const items = storedBatchMessages([m1, m2], 'pfx', 5000);
  t.same(
    items.map((i) => i.keys.channel),
    ['pfx:log:{a}:live', 'pfx:log:{b}:live', 'pfx:log:{a}:live'],
  );
  const decoded = items.map((i) => decodeLogChannelMessage(messageText(i)));
  t.ok(decoded.every(Boolean), 'every payload matches LogChannelMessageSchema');
  t.same(
    decoded.map((d) => d!.docs.map((doc) => doc.message)),
    [['1', '3'], ['2'], ['4']],
  );
  t.match(decoded[0], { v: 1, device_entity_id: 'a', received_at_ms: 1000, ingested_at_ms: 5000 });
  t.same(decoded[0]!.docs[0], m1.lines[0]!.doc, 'the docs are the stored documents');
  t.equal(new Set(decoded.map((d) => d!.batch_id)).size, 3, 'batch ids are distinct');
});

t.test('batch ids are deterministic: a redelivered message gets the same ones', async (t) => {
  const docs = [{ entity_id: 'a', message: 'x' }, { entity_id: 'b', message: 'y' }];
  const first = storedBatchMessages([await message(1000, ...docs)], 'p', 1)
    .map((i) => decodeLogChannelMessage(messageText(i))!.batch_id);
  const again = storedBatchMessages([await message(9000, ...docs)], 'p', 2)
    .map((i) => decodeLogChannelMessage(messageText(i))!.batch_id);
  t.same(again, first);
});

t.test('a big message for one entity is split into parts under the size bound, order kept', async (t) => {
  const docs = Array.from({ length: 3000 }, (_, i) => ({ entity_id: 'big', message: `${i}`.padEnd(200, '.') }));
  const items = storedBatchMessages([await message(1, ...docs)], 'p', 2);
  t.ok(items.length > 1);
  const decoded = items.map((i) => decodeLogChannelMessage(messageText(i))!);
  t.ok(decoded.every((d) => JSON.stringify(d.docs).length <= STORED_BATCH_MAX_DOCS_BYTES + 2));
  t.same(
    decoded.flatMap((d) => d.docs.map((doc) => Number.parseInt(doc.message as string, 10))),
    docs.map((_, i) => i),
  );
});

t.test('StoredBatchPublisher appends and publishes in one pipeline, in order, to real Redis subscribers; a repeat is skipped', async (t) => {
  const prefix = uniqueRedisPrefix();
  const pub = new Redis(LOCAL_REDIS_URL);
  const sub = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    await deleteRedisPrefix(pub, prefix);
    pub.disconnect();
    sub.disconnect();
  });
  const received: Array<[string, string]> = [];
  sub.on('pmessage', (_p, channel, payload) => received.push([channel, payload]));
  await sub.psubscribe(logChannelPattern(prefix));
  const { registry, metrics } = freshMetrics();
  const publisher = new StoredBatchPublisher(pub, { backoff: { baseMs: 1, capMs: 5 }, signal: new AbortController().signal, retention: RETENTION }, metrics, silentLogger);
  const msgs = [];
  for (let i = 0; i < 20; i++) msgs.push(await message(i, { entity_id: `e${i % 3}`, message: `${i}` }));
  const items = storedBatchMessages(msgs, prefix, 99);
  await publisher.publish(items);
  await eventually(() => received.length === 20);
  t.same(
    received.map(([c]) => c),
    items.map((i) => i.keys.channel),
    'arrival order = receive order',
  );
  const e0 = received.filter(([c]) => c === logChannelName(prefix, 'e0')).map(([, p]) => decodeLogChannelMessage(p)!);
  t.same(e0.map((m) => [m.first_offset, m.docs[0]!.message, m.ids]), msgs.filter((_, i) => i % 3 === 0).map((m, k) => [k + 1, m.lines[0]!.doc.message, [m.lines[0]!.id]]), 'offsets follow the device\'s lines; ids are the documents\' ids');
  t.equal(await metricValue(registry, 'iot_logsink_fanout_messages_total'), 20);

  await publisher.publish(items); // the broker redelivered everything after a crash
  t.equal(await metricValue(registry, 'iot_logsink_stream_duplicate_batches_total'), 20, 'every repeat is recognised');
  t.equal(await metricValue(registry, 'iot_logsink_fanout_messages_total'), 20, 'and not published again');
  const window = await readAfterCursor(pub, deviceStreamKeys(prefix, 'e0'), RETENTION, { epoch: e0[0]!.epoch!, ms: 0, offset: 0 }, 100);
  t.match(window, { recoverable: true, head: { offset: 7 } }, 'the device stream holds each line once');
  await publisher.publish(storedBatchMessages([await message(99, { entity_id: 'e0', message: 'after' })], prefix, 100));
  await eventually(() => received.length === 21);
  t.equal(received.length, 21, 'nothing but the new message was published');
});

t.test('StoredBatchPublisher retries while Redis is unreachable and gives up only on abort', async (t) => {
  const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  dead.on('error', () => {});
  t.teardown(() => dead.disconnect());
  const { registry, metrics } = freshMetrics();
  const ac = new AbortController();
  const fanout = new StoredBatchPublisher(dead, { backoff: { baseMs: 1, capMs: 5 }, signal: ac.signal, retention: RETENTION }, metrics, silentLogger);
  const pending = fanout.publish(storedBatchMessages([await message(1, { entity_id: 'a', message: 'm' })], 'p', 1));
  await eventually(async () => (await registry.metrics()).match(/iot_logsink_retry_delay_seconds_count\{target="redis"\} ([3-9]|\d\d)/));
  ac.abort();
  await t.rejects(pending);
});
