/**
 * Redis memory per retained line of a device's log stream (packages/log-stream), as ingest writes
 * it: lines appended with the append-batch script in batches, then `MEMORY USAGE <key> SAMPLES 0`
 * (exact) of the device's keys divided by the lines held. Prints a table; asserts nothing.
 * `node bench/dist/log-stream/stream-memory.js [--lines N] [--batch B]` after `make build`.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { logChannelMessageFrame } from '@iotsupport/contracts';
import { defineStreamScripts, deviceStreamKeys, queueAppendBatch, streamRetention } from '@iotsupport/log-stream';
import { LOCAL_REDIS_URL, deleteRedisPrefix, uniqueRedisPrefix } from '@iotsupport/testkit';

const { values: args } = parseArgs({ options: { lines: { type: 'string', default: '5000' }, batch: { type: 'string', default: '20' } } });
const LINES = Number(args.lines);
const BATCH = Number(args.batch);

/** A device log line of about `messageChars` characters of message, as devices send them, after ingest's parse. */
function doc(entityId: string, n: number, messageChars: number): string {
  const message = `[wifi] rssi=-${60 + (n % 20)} dBm, reconnect attempt ${n}; `.padEnd(messageChars, 'abcdefghij ');
  return JSON.stringify({ entity_id: entityId, level: n % 10 === 0 ? 'warn' : 'info', component: 'net', message, seq: n, '@timestamp': new Date(1_764_900_000_000 + n * 5).toISOString() });
}

const redis = new Redis(LOCAL_REDIS_URL);
defineStreamScripts(redis);
const prefix = uniqueRedisPrefix();
const retention = streamRetention({ LOG_STREAM_MAX_LINES: LINES, LOG_STREAM_MAX_AGE_SECONDS: 3600, INGEST_MAX_INFLIGHT: 64, INGEST_SESSION_EXPIRY_SECONDS: 604800 });
console.log(`log-stream memory: ${LINES} lines per device, appended ${BATCH} per batch (Redis ${(await redis.info('server')).match(/redis_version:(\S+)/)?.[1]})`);
console.log('message chars | doc JSON bytes | stream bytes/line | all keys bytes/line | overhead/line');
try {
  for (const messageChars of [60, 200, 1000]) {
    const entityId = `sensor-${messageChars}`;
    const keys = deviceStreamKeys(prefix, entityId);
    let docBytes = 0;
    for (let b = 0; b * BATCH < LINES; b++) {
      const docsJson = Array.from({ length: Math.min(BATCH, LINES - b * BATCH) }, (_, i) => doc(entityId, b * BATCH + i, messageChars));
      docBytes += docsJson.reduce((n, d) => n + Buffer.byteLength(d), 0);
      const batchId = `${'d'.repeat(43)}.${b}`;
      const lineIds = docsJson.map((_, i) => `${'d'.repeat(43)}-${b * BATCH + i}`);
      const frame = logChannelMessageFrame({ v: 1, batch_id: batchId, device_entity_id: entityId, received_at_ms: 1, ingested_at_ms: 2, ids: lineIds });
      const pipeline = redis.pipeline();
      queueAppendBatch(pipeline, { keys, batchId, frame, lineIds, docsJson }, retention);
      await pipeline.exec();
    }
    const held = await redis.xlen(keys.stream);
    const usage = async (key: string) => Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
    const stream = await usage(keys.stream);
    const all = stream + (await usage(keys.head)) + (await usage(keys.batches));
    const perDoc = docBytes / LINES;
    console.log(`${String(messageChars).padStart(13)} | ${perDoc.toFixed(0).padStart(14)} | ${(stream / held).toFixed(0).padStart(17)} | ${(all / held).toFixed(0).padStart(19)} | ${(stream / held - perDoc).toFixed(0).padStart(13)}`);
  }
} finally {
  await deleteRedisPrefix(redis, prefix);
  redis.disconnect();
}
