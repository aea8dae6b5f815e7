import t, { type Test } from 'tap';
import { eventually, purgeMqttSession, startElasticsearchStandin, uniqueId, uniqueRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';
import { documentId, payloadDigest } from '@iotsupport/log-ingest';
import { startIngestProcess, startPublisher } from './process.js';

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
  return { es, env, publisher, assertAllStoredOnce, storedMessages };
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
