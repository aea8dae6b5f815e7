import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, metricValue } from '@iotsupport/testkit';
import { decodeLogChannelMessage } from '@iotsupport/contracts';
import { IngestPipeline, type StoredBatchMessage, type LogLine } from '../src/index.js';
import { freshMetrics, messageText, silentLogger } from './helpers.js';

/** The `message` of every doc in published channel messages, in publish order. */
function decodeChannelDocs(items: readonly StoredBatchMessage[]): string[] {
  return items.flatMap((i) => decodeLogChannelMessage(messageText(i))!.docs.map((d) => d.message as string));
}

function setup(storeDelayMs: (batch: number) => number, maxBatchLines = 5) {
  const stored: string[][] = [];
  const published: StoredBatchMessage[] = [];
  const acks: string[] = [];
  const { registry, metrics } = freshMetrics();
  let batch = 0;
  const pipeline = new IngestPipeline({
    parse: { indexPrefix: 'i-', entityField: 'entity_id' },
    redisKeyPrefix: 'p',
    maxBatchLines,
    store: {
      async store(lines: readonly LogLine[]) {
        await sleep(storeDelayMs(batch++));
        stored.push(lines.map((l) => l.doc.message as string));
      },
    },
    publisher: {
      async publish(items: readonly StoredBatchMessage[]) {
        published.push(...items);
      },
    },
    backoff: { baseMs: 1, capMs: 5 },
    signal: new AbortController().signal,
    metrics,
    logger: silentLogger,
  });
  const send = (name: string, lines: number) =>
    pipeline.accept({
      payload: Buffer.from(Array.from({ length: lines }, (_, i) => JSON.stringify({ entity_id: 'e', message: `${name}.${i}` })).join('\n')),
      receivedAtMs: Date.now(),
      ack: () => acks.push(name),
    });
  return { pipeline, stored, published, acks, send, registry };
}

t.test('a later batch finishing first still fans out and acks in receive order', async (t) => {
  // Batch 0 is slow, batch 1 fast: two _bulk requests overlap.
  const s = setup((b) => (b === 0 ? 80 : 5), 4);
  s.send('a', 3);
  s.send('b', 3); // split: 1 line in batch 0, 2 in batch 1
  s.send('c', 2);
  s.send('empty', 0);
  s.send('d', 1);
  await s.pipeline.drain();
  t.same(s.acks, ['a', 'b', 'c', 'empty', 'd'], 'acks in receive order');
  t.same(
    decodeChannelDocs(s.published),
    ['a.0', 'a.1', 'a.2', 'b.0', 'b.1', 'b.2', 'c.0', 'c.1', 'd.0'],
    'fan-out in receive order, a split message streamed whole once complete',
  );
  t.equal(s.stored.length, 3);
  t.equal(await metricValue(s.registry, 'iot_logsink_unacked_messages'), 0);
  t.equal(await metricValue(s.registry, 'iot_logsink_queue_depth'), 0);
});

t.test('a redelivery of a queued payload joins it: stored once, both deliveries acknowledged', async (t) => {
  const s = setup(() => 30, 100);
  s.send('x', 2);
  s.send('x', 2);
  await s.pipeline.drain();
  t.same(s.acks, ['x', 'x']);
  t.same(s.stored, [['x.0', 'x.1']]);
});

t.test('messages arriving while batches run are picked up without a new start', async (t) => {
  const s = setup(() => 10, 3);
  for (let i = 0; i < 20; i++) {
    s.send(`m${i}`, 2);
    await sleep(2);
  }
  await eventually(() => s.acks.length === 20);
  t.same(
    s.acks,
    Array.from({ length: 20 }, (_, i) => `m${i}`),
  );
});
