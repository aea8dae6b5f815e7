import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, deleteRedisPrefix, eventually, purgeMqttSession, startElasticsearchStandin, uniqueId, uniqueRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';
import { documentId, payloadDigest } from '@iotsupport/log-ingest';
import { defineStreamScripts, deviceStreamKeys, readAfterCursor, streamRetention } from '@iotsupport/log-stream';
import { startIngestProcess, startPublisher } from './process.js';
import { startPubackSwallowingProxy } from './puback-swallowing-proxy.js';

const LINES = 10;

async function setup(t: Test) {
  const es = await startElasticsearchStandin();
  t.teardown(() => es.stop());
  const clientId = uniqueId('ingest');
  t.teardown(() => purgeMqttSession(clientId));
  const prefix = uniqueTopicPrefix();
  const env = {
    ELASTICSEARCH_URL: es.url,
    MQTT_CLIENT_ID: clientId,
    MQTT_TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: uniqueRedisPrefix(),
    INGEST_MAX_INFLIGHT: '32',
    INGEST_RETRY_MAX_DELAY_MS: '200',
    GRACEFUL_SHUTDOWN_TIMEOUT: '15',
  };
  const redis = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    await deleteRedisPrefix(redis, env.REDIS_KEY_PREFIX); // the device streams ingest wrote
    redis.disconnect();
  });
  const publisher = await startPublisher(t, `${prefix}iotsupport/logsink`);
  const lineIds = (payload: string) => Array.from({ length: LINES }, (_, l) => documentId(payloadDigest(Buffer.from(payload)), l));
  /** Every line of every payload published so far is stored, once. */
  const assertAllStoredOnce = async (t: Test) => {
    const expected = new Set(publisher.payloads.flatMap(lineIds));
    await eventually(() => es.count('logstash-http-*') >= expected.size, 60_000);
    const stored = es.documents('logstash-http-*');
    t.equal(stored.length, expected.size, `${expected.size} lines stored, none twice`);
    t.same(new Set(stored.map((d) => d.id)), expected, 'exactly the published lines');
  };
  /** Published messages by how many of their lines are stored right now: all, some, none. */
  const storedMessages = () => {
    const stored = new Set(es.documents('logstash-http-*').map((d) => d.id));
    const counts = { complete: 0, partial: 0 };
    for (const p of publisher.payloads) {
      const n = lineIds(p).filter((id) => stored.has(id)).length;
      if (n === LINES) counts.complete++;
      else if (n > 0) counts.partial++;
    }
    return counts;
  };
  return { es, env, redis, publisher, lineIds, assertAllStoredOnce, storedMessages };
}

t.test('kill -9 mid-flow, restart: every line stored exactly once', async (t) => {
  const { es, env, publisher, assertAllStoredOnce } = await setup(t);
  const first = await startIngestProcess(t, env);
  await publisher.publish(60, LINES);
  await eventually(() => es.count('logstash-http-*') >= 200, 20_000);
  // Elasticsearch goes away: ingest keeps receiving but can store nothing, so it holds
  // unacknowledged messages — exactly what a premature ack would lose at the kill.
  await es.outage('reset');
  await publisher.publish(60, LINES);
  await eventually(async () => (await first.metric('iot_logsink_unacked_messages')) > 0, 20_000);
  const heldAtKill = await first.metric('iot_logsink_unacked_messages');
  first.child.kill('SIGKILL');
  await first.exited;
  await es.endOutage();
  await publisher.publish(60, LINES); // while ingest is down: queued by the broker for the session
  const second = await startIngestProcess(t, env);
  await assertAllStoredOnce(t);
  t.ok((await second.metric('iot_logsink_redeliveries_total')) > 0, `the ${heldAtKill} held at the kill came back`);
  const exposition = await (await fetch(`${second.url}/metrics`)).text();
  for (const name of ['iot_logsink_messages_received_total', 'iot_logsink_es_writes_total', 'iot_logsink_es_write_duration_seconds', 'iot_logsink_retry_delay_seconds', 'iot_logsink_batch_size', 'iot_logsink_queue_depth', 'iot_logsink_unacked_messages', 'iot_logsink_dead_lettered_lines_total', 'application_shutting_down']) {
    t.match(exposition, new RegExp(`^# TYPE ${name} `, 'm'), `/metrics has ${name}`);
  }
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});

t.test('SIGTERM mid-flow: in-flight messages finish, exit 0, nothing lost across the restart', async (t) => {
  const { es, env, publisher, assertAllStoredOnce, storedMessages } = await setup(t);
  const first = await startIngestProcess(t, env);
  await publisher.publish(40, LINES);
  // Slow the store down so a batch is still retrying when the signal arrives.
  es.rejectItems({ status: 429, count: 150 });
  const during = publisher.publish(60, LINES, 2);
  await eventually(async () => (await first.metric('iot_logsink_unacked_messages')) > 0, 20_000);
  const receivedAtSignal = await first.metric('iot_logsink_messages_received_total');
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'drained and exited 0');
  // Checked before the second process starts: the broker would redeliver whatever the first one
  // dropped, so the end state alone cannot tell a real drain from none.
  const atExit = storedMessages();
  t.ok(atExit.complete >= receivedAtSignal, `all ${receivedAtSignal} messages received before SIGTERM were stored by the first process (${atExit.complete} complete)`);
  t.equal(atExit.partial, 0, 'no message was left half stored');
  await during;
  const second = await startIngestProcess(t, env);
  await assertAllStoredOnce(t);
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});

t.test('kill -9 after batches were appended and published but before the broker got the acks: each line is in its device stream once', async (t) => {
  const { es, env, redis, publisher, lineIds } = await setup(t);
  const proxy = await startPubackSwallowingProxy(t, LOCAL_MQTT_URL);
  const first = await startIngestProcess(t, { ...env, MQTT_URL: proxy.url });
  const MESSAGES = 20; // below INGEST_MAX_INFLIGHT: the broker keeps sending without acks
  await publisher.publish(MESSAGES, LINES);
  await eventually(async () => (await first.metric('iot_logsink_fanout_messages_total')) === MESSAGES, 30_000);
  await eventually(() => proxy.swallowed() >= MESSAGES, 30_000); // ingest acknowledged every message; the broker heard none of it
  first.child.kill('SIGKILL');
  await first.exited;

  const second = await startIngestProcess(t, env); // straight to the broker, which redelivers all
  await eventually(async () => (await second.metric('iot_logsink_stream_duplicate_batches_total')) === MESSAGES, 30_000);
  t.equal(await second.metric('iot_logsink_fanout_messages_total'), 0, 'no redelivered batch was published again');
  t.equal(es.count('logstash-http-*'), MESSAGES * LINES, 'stored once');

  defineStreamScripts(redis);
  const retention = streamRetention({ LOG_STREAM_MAX_LINES: 5000, LOG_STREAM_MAX_AGE_SECONDS: 600, INGEST_MAX_INFLIGHT: 32, INGEST_SESSION_EXPIRY_SECONDS: 3600 });
  const inStreams: string[] = [];
  for (let e = 0; e < 5; e++) {
    const keys = deviceStreamKeys(env.REDIS_KEY_PREFIX, `e${e}`);
    const epoch = await redis.hget(keys.head, 'epoch');
    const window = await readAfterCursor(redis, keys, retention, { epoch: epoch!, ms: 0, offset: 0 }, 10_000);
    if (!window.recoverable) return t.fail(`e${e}: ${window.reason}`);
    t.equal(window.head.offset, window.lines.length, `e${e}: offsets 1..${window.lines.length}, no gap, no repeat`);
    inStreams.push(...window.lines.map((l) => l.id));
  }
  t.equal(inStreams.length, MESSAGES * LINES, 'as many stream entries as lines');
  t.same(new Set(inStreams), new Set(publisher.payloads.flatMap(lineIds)), 'each line once');
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});
