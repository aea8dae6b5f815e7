import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, metricValue } from '@iotsupport/testkit';
import { dailyIndexName, documentId, payloadDigest } from '../src/index.js';
import { ndjsonBatch, startIngestRig } from './harness.js';

const MESSAGES = 300;
const LINES_PER_MESSAGE = 20;
const WINDOW = 16;

t.test('Elasticsearch down, then 503, then per-item 429 during a steady flow: every line stored exactly once', async (t) => {
  const { es, fanout, registry, publisher } = await startIngestRig(t, { INGEST_MAX_INFLIGHT: WINDOW, INGEST_BULK_MAX_LINES: 500, INGEST_RETRY_MAX_DELAY_MS: 250 });

  let maxUnacked = 0;
  const sampler = setInterval(() => {
    void metricValue(registry, 'iot_logsink_unacked_messages').then((v) => (maxUnacked = Math.max(maxUnacked, v)));
  }, 10);
  t.teardown(() => clearInterval(sampler));

  const payloads: string[] = [];
  const dayBefore = dailyIndexName('logstash-http-', Date.now());
  for (let i = 0; i < MESSAGES; i++) {
    if (i === 40) await es.outage('reset');
    if (i === 110) {
      await es.endOutage();
      es.failRequests({ status: 503 });
    }
    if (i === 170) {
      es.stopFailingRequests();
      es.rejectItems({ status: 429, when: () => true, count: 1500 });
    }
    const payload = ndjsonBatch(`msg${i}`, LINES_PER_MESSAGE, 4);
    payloads.push(payload);
    await publisher.publish(payload);
    await sleep(8);
  }
  await eventually(() => es.count('logstash-http-*') >= MESSAGES * LINES_PER_MESSAGE, 90_000);
  await eventually(async () => (await metricValue(registry, 'iot_logsink_unacked_messages')) === 0, 20_000);
  clearInterval(sampler);
  t.equal(dailyIndexName('logstash-http-', Date.now()), dayBefore, 'test did not straddle UTC midnight');

  const stored = es.documents('logstash-http-*');
  t.equal(stored.length, MESSAGES * LINES_PER_MESSAGE, 'every line once');
  const expectedIds = new Set(payloads.flatMap((p) => Array.from({ length: LINES_PER_MESSAGE }, (_, i) => documentId(payloadDigest(Buffer.from(p)), i))));
  t.same(new Set(stored.map((d) => d.id)), expectedIds, 'exactly the expected ids');
  t.equal(es.count('iotsupport-deadletter'), 0, 'nothing dead-lettered: all failures were transient');

  t.ok((await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'failed', error_type: 'connection' })) > 0, 'saw the outage');
  t.ok((await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'failed', error_type: 'http_5xx' })) > 0, 'saw the 503s');
  t.ok((await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'partial', error_type: 'item_retryable' })) > 0, 'saw the per-item 429s');
  t.ok(maxUnacked <= WINDOW, `held at most the in-flight window unacknowledged (max ${maxUnacked})`);
  t.equal(await metricValue(registry, 'iot_logsink_queue_depth'), 0);

  // The fan-out carries each line once, per entity in publish order.
  await eventually(() => fanout.all.reduce((n, f) => n + f.message.docs.length, 0) >= MESSAGES * LINES_PER_MESSAGE, 10_000);
  const seen = new Set<string>();
  const perEntity = new Map<string, string[]>();
  for (const { channel, message } of fanout.all) {
    if (seen.has(`${channel} ${message.batch_id}`)) continue;
    seen.add(`${channel} ${message.batch_id}`);
    const list = perEntity.get(message.device_entity_id) ?? [];
    list.push(...message.docs.map((d) => `${d.tag as string}/${d.seq as number}`));
    perEntity.set(message.device_entity_id, list);
  }
  for (let e = 0; e < 4; e++) {
    const expected = [];
    for (let i = 0; i < MESSAGES; i++) for (let s = e; s < LINES_PER_MESSAGE; s += 4) expected.push(`msg${i}/${s}`);
    t.same(perEntity.get(`e${e}`), expected, `entity e${e}: every line, in order`);
  }
});
