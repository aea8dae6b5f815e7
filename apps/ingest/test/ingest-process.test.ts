import t, { type Test } from 'tap';
import { eventually, startElasticsearchStandin, uniqueId, uniqueRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';
import { documentId, payloadDigest } from '@iotsupport/log-ingest';
import { purgeSession, startIngestProcess, startPublisher } from './process.js';

const LINES = 10;

async function setup(t: Test) {
  const es = await startElasticsearchStandin();
  t.teardown(() => es.stop());
  const clientId = uniqueId('ingest');
  t.teardown(() => purgeSession(clientId));
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
  /** Every line of every payload published so far is stored, once. */
  const assertAllStoredOnce = async (t: Test) => {
    const expected = new Set(publisher.payloads.flatMap((p) => Array.from({ length: LINES }, (_, l) => documentId(payloadDigest(Buffer.from(p)), l))));
    await eventually(() => es.count('logstash-http-*') >= expected.size, 60_000);
    const stored = es.documents('logstash-http-*');
    t.equal(stored.length, expected.size, `${expected.size} lines stored, none twice`);
    t.same(new Set(stored.map((d) => d.id)), expected, 'exactly the published lines');
  };
  return { es, env, publisher, assertAllStoredOnce };
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
  const { es, env, publisher, assertAllStoredOnce } = await setup(t);
  const first = await startIngestProcess(t, env);
  await publisher.publish(40, LINES);
  // Slow the store down so a batch is still retrying when the signal arrives.
  es.rejectItems({ status: 429, count: 150 });
  const during = publisher.publish(60, LINES, 2);
  await eventually(async () => (await first.metric('iot_logsink_unacked_messages')) > 0, 20_000);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'drained and exited 0');
  await during;
  const second = await startIngestProcess(t, env);
  await assertAllStoredOnce(t);
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});
