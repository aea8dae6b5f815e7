import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { assembleLogChannelMessage, decodeLogChannelMessage, formatCursor, logChannelMessageFrame, type StreamPosition } from '@iotsupport/contracts';
import { LOCAL_REDIS_URL, deleteRedisPrefix, eventually, uniqueRedisPrefix } from '@iotsupport/testkit';
import { appendResult, defineStreamScripts, deviceStreamKeys, queueAppendBatch, readAfterCursor, streamHead, type AppendResult, type StreamRetention } from '../src/index.js';

const RETENTION: StreamRetention = { maxLines: 1000, maxAgeMs: 600_000, headTtlMs: 3_600_000, rememberedBatches: 3 };

async function setup(t: Test, retention: Partial<StreamRetention> = {}) {
  const prefix = uniqueRedisPrefix();
  const redis = new Redis(LOCAL_REDIS_URL);
  const sub = new Redis(LOCAL_REDIS_URL);
  defineStreamScripts(redis);
  t.teardown(async () => {
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
    sub.disconnect();
  });
  const published: string[] = [];
  sub.on('message', (_channel, message) => published.push(message));
  const keys = deviceStreamKeys(prefix, 'dev:{1}');
  await sub.subscribe(keys.channel);
  const policy = { ...RETENTION, ...retention };
  let line = 0;
  /** Appends one batch of `count` lines (docs `{"n":<line number>}`) under `batchId`. */
  const append = async (batchId: string, count: number): Promise<AppendResult> => {
    const docsJson = Array.from({ length: count }, () => JSON.stringify({ n: line++ }));
    const lineIds = docsJson.map((_, i) => `${batchId}-${i}`);
    const frame = logChannelMessageFrame({ v: 1, batch_id: batchId, device_entity_id: 'dev:{1}', received_at_ms: 1, ingested_at_ms: 2, ids: lineIds });
    const pipeline = redis.pipeline();
    queueAppendBatch(pipeline, { keys, batchId, frame, lineIds, docsJson }, policy);
    const [[err, reply]] = (await pipeline.exec())! as [[Error | null, unknown]];
    if (err) throw err;
    return appendResult(reply);
  };
  const read = (since: StreamPosition | undefined, limit = 100) => readAfterCursor(redis, keys, policy, since, limit);
  const docsOf = (lines: Array<{ doc: string }>) => lines.map((l) => (JSON.parse(l.doc) as { n: number }).n);
  return { redis, keys, append, read, docsOf, published, policy };
}

const appended = (r: AppendResult) => (r.appended ? r : t.fail('expected an append') as never);

t.test('offsets increase by one per line across batches; the channel message carries the position', async (t) => {
  const s = await setup(t);
  const a = appended(await s.append('a', 3));
  const b = appended(await s.append('b', 2));
  t.equal(a.first.offset, 1);
  t.equal(a.lastOffset, 3);
  t.equal(b.first.offset, 4);
  t.equal(b.lastOffset, 5);
  t.equal(b.first.epoch, a.first.epoch, 'one epoch');
  t.ok(b.first.ms >= a.first.ms);
  t.ok(a.epochCreated, 'the first append creates the epoch');
  t.notOk(b.epochCreated, 'later ones find it');

  await eventually(() => s.published.length === 2);
  const message = decodeLogChannelMessage(s.published[1]!)!;
  t.ok(message, 'the published message is a valid channel message');
  t.match(message, { batch_id: 'b', epoch: a.first.epoch, stream_ms: b.first.ms, first_offset: 4, ids: ['b-0', 'b-1'] });
  const { docs, ...header } = message;
  t.equal(s.published[1], assembleLogChannelMessage(header, docs.map((d) => JSON.stringify(d))), 'the script writes the contract\'s text');

  const all = await s.read({ epoch: a.first.epoch, ms: 0, offset: 0 });
  t.ok(all.recoverable);
  if (!all.recoverable) return;
  t.same(s.docsOf(all.lines), [0, 1, 2, 3, 4], 'stream order = offset order = line order');
  t.same(all.lines.map((l) => l.id), ['a-0', 'a-1', 'a-2', 'b-0', 'b-1'], 'each line keeps its id');
  t.equal(all.lines[3]!.cursor, formatCursor(b.first));
  t.same(all.head, { epoch: a.first.epoch, ms: b.first.ms, offset: 5 });
});

t.test('a batch appended again (re-publish after a crash) is neither appended nor published twice', async (t) => {
  const s = await setup(t);
  const first = appended(await s.append('x', 2));
  const again = await s.append('x', 2);
  t.same(again, { appended: false, head: { epoch: first.first.epoch, ms: first.first.ms, offset: 2 } }, 'says it was a duplicate');
  await s.append('y', 1);
  await eventually(() => s.published.length === 2);
  t.same(s.published.map((p) => decodeLogChannelMessage(p)!.batch_id), ['x', 'y'], 'published once');
  t.equal(await s.redis.xlen(s.keys.stream), 3);
});

t.test('the window is trimmed by count; reading after a cursor gives exactly the lines after it, or "trimmed"', async (t) => {
  const s = await setup(t, { maxLines: 5 });
  const first = appended(await s.append('a', 3));
  await s.append('b', 3);
  const c = appended(await s.append('c', 3));
  t.equal(await s.redis.xlen(s.keys.stream), 5, 'count bound');
  const epoch = first.first.epoch;
  const held = await s.read({ epoch, ms: c.first.ms, offset: 6 });
  t.ok(held.recoverable);
  if (held.recoverable) t.same(s.docsOf(held.lines), [6, 7, 8], 'exactly the lines after the cursor');
  const page = await s.read({ epoch, ms: first.first.ms, offset: 4 }, 2);
  t.ok(page.recoverable);
  if (page.recoverable) t.same(s.docsOf(page.lines), [4, 5], 'at most the limit, from the cursor on');
  t.match(await s.read({ epoch, ms: first.first.ms, offset: 2 }), { recoverable: false, reason: 'trimmed' }, 'the line after the cursor is gone');
  t.match(await s.read({ epoch, ms: c.first.ms, offset: 9 }), { recoverable: true, lines: [] }, 'a cursor at the head: nothing new');
  t.match(await s.read({ epoch, ms: c.first.ms, offset: 10 }), { recoverable: false, reason: 'ahead' });
  t.match(await s.read({ epoch: 'other', ms: c.first.ms, offset: 6 }), { recoverable: false, reason: 'epoch_changed' });
});

t.test('the window is trimmed by age', async (t) => {
  const s = await setup(t, { maxAgeMs: 200 });
  const old = appended(await s.append('old', 2));
  // Wait on Redis's own clock (the script's) until the first lines are past the age.
  await eventually(async () => {
    const [sec, usec] = await s.redis.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000) > old.first.ms + 250;
  });
  await s.append('new', 2);
  const all = await s.read({ epoch: old.first.epoch, ms: 0, offset: 2 });
  t.ok(all.recoverable);
  if (all.recoverable) t.same(s.docsOf(all.lines), [2, 3], 'only the recent lines are held');
  t.match(await s.read({ epoch: old.first.epoch, ms: 0, offset: 0 }), { recoverable: false, reason: 'trimmed' });
  t.ok((await s.redis.pttl(s.keys.stream)) <= 200, 'an idle device\'s stream expires after the age');
});

t.test('the epoch is created once, and a new one after the data is lost', async (t) => {
  const s = await setup(t);
  const before = await streamHead(s.redis, s.keys, s.policy);
  t.same({ ...before, epoch: typeof before.epoch }, { epoch: 'string', ms: 0, offset: 0 }, 'reading the head of a new device gives it an epoch');
  const a = appended(await s.append('a', 2));
  t.equal(a.first.epoch, before.epoch, 'appends keep it');
  t.notOk(a.epochCreated);

  await s.redis.del(s.keys.head, s.keys.stream, s.keys.batches); // Redis lost the device's data
  const after = appended(await s.append('b', 1));
  t.ok(after.epochCreated);
  t.not(after.first.epoch, a.first.epoch, 'a new epoch');
  t.equal(after.first.offset, 1, 'offsets start over in it');
  t.match(await s.read({ epoch: a.first.epoch, ms: a.first.ms, offset: 1 }), { recoverable: false, reason: 'epoch_changed' }, 'an old cursor is not recoverable');

  await s.redis.del(s.keys.head); // a partial loss: only the head
  const third = appended(await s.append('a', 1));
  t.ok(third.epochCreated);
  t.equal(third.first.offset, 1, 'a batch id remembered under the lost epoch does not count');
  t.equal(await s.redis.xlen(s.keys.stream), 1, 'lines of the lost epoch are not mixed into the new one');
});

t.test('only the most recent batch ids are remembered, and every key of the device expires', async (t) => {
  const s = await setup(t, { rememberedBatches: 3 });
  for (const id of ['a', 'b', 'c', 'd']) await s.append(id, 1);
  t.same(await s.redis.zrange(s.keys.batches, 0, -1), ['b', 'c', 'd']);
  for (const key of [s.keys.head, s.keys.stream, s.keys.batches]) t.ok((await s.redis.pttl(key)) > 0, `${key} has an expiry`);
});
