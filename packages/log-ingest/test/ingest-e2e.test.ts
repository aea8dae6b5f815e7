import t from 'tap';
import { logChannelName } from '@iotsupport/contracts';
import { eventually, metricValue } from '@iotsupport/testkit';
import { dailyIndexName, documentId, payloadDigest } from '../src/index.js';
import { collectFanout, isolatedSettings, startIngestRig, startInProcessIngest, startPublisher, startStandin } from './harness.js';

t.test('published lines are stored with the right index, fields and ids, and fanned out per entity in order', async (t) => {
  const { es, settings, fanout, registry, lifecycle, publisher } = await startIngestRig(t);

  const payloads = [
    [
      { entity_id: 'dev-a', message: '\u001b[31mboot\u001b[0m', relative_time: 1.5, level: 'info' },
      { entity_id: 'dev-b', message: 'b1' },
      { message: 'no entity: stored, not streamed' },
      { entity_id: 'dev-a', message: 'a2', extra: { k: [1, 2] } },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n'),
    `${JSON.stringify({ entity_id: 'dev-a', message: 'a3' })}\nnot json\n${JSON.stringify({ entity_id: 'dev-b', message: 'b2' })}\n`,
  ];
  const before = Date.now();
  for (const p of payloads) await publisher.publish(p);
  await eventually(() => es.count('logstash-http-*') === 6, 15_000);
  const after = Date.now();

  const index = dailyIndexName('logstash-http-', before);
  t.equal(dailyIndexName('logstash-http-', after), index, 'test did not straddle UTC midnight');
  t.same(es.indices(), [index]);
  const d0 = payloadDigest(Buffer.from(payloads[0]!));
  const d1 = payloadDigest(Buffer.from(payloads[1]!));
  const first = es.get(index, documentId(d0, 0))!;
  t.match(first, { entity_id: 'dev-a', message: 'boot', level: 'info' });
  t.notOk('relative_time' in first, 'relative_time removed');
  const ts = Date.parse(first['@timestamp'] as string);
  t.ok(ts >= before - 1 && ts <= after, '@timestamp is the receive time');
  t.same(es.get(index, documentId(d0, 3)), { entity_id: 'dev-a', message: 'a2', extra: { k: [1, 2] }, '@timestamp': first['@timestamp'] });
  t.ok(es.get(index, documentId(d0, 2)), 'line without entity stored');
  t.ok(es.get(index, documentId(d1, 2)), 'line after an invalid one stored, id counts the invalid line');
  t.notOk(es.get(index, documentId(d1, 1)));

  await eventually(() => fanout.all.length === 4, 10_000);
  const byChannel = (entity: string) => fanout.all.filter((f) => f.channel === logChannelName(settings.REDIS_KEY_PREFIX, entity)).flatMap((f) => f.message.docs.map((d) => d.message));
  t.same(byChannel('dev-a'), ['boot', 'a2', 'a3'], 'dev-a in receive order');
  t.same(byChannel('dev-b'), ['b1', 'b2']);
  t.same(fanout.invalid, []);
  const streamedA = fanout.all.find((f) => f.message.device_entity_id === 'dev-a')!.message;
  t.same(streamedA.docs[0], first, 'fan-out carries the stored document');
  t.ok(streamedA.ingested_at_ms >= streamedA.received_at_ms);
  t.equal(await metricValue(registry, 'iot_logsink_messages_received_total', { status: 'ok' }), 1);
  t.equal(await metricValue(registry, 'iot_logsink_messages_received_total', { status: 'partial' }), 1);
  t.equal(await metricValue(registry, 'iot_logsink_lines_received_total', { status: 'invalid_json' }), 1);
  await eventually(async () => (await metricValue(registry, 'iot_logsink_unacked_messages')) === 0);
});

t.test('without ELASTICSEARCH_URL lines are streamed, not stored', async (t) => {
  const settings = isolatedSettings();
  const fanout = await collectFanout(t, settings);
  const { lifecycle } = startInProcessIngest(t, settings);
  await eventually(async () => (await lifecycle.readiness()).ready, 10_000);
  t.notOk('elasticsearch' in (await lifecycle.readiness()).checks, 'no elasticsearch readiness check');
  const publisher = await startPublisher(t, settings);
  await publisher.publish(JSON.stringify({ entity_id: 'x', message: 'live only' }));
  await eventually(() => fanout.all.length === 1, 10_000);
  t.equal(fanout.all[0]!.message.docs[0]!.message, 'live only');
});

t.test('readiness reports Elasticsearch down, and comes back by itself', async (t) => {
  const es = await startStandin(t);
  const settings = isolatedSettings({ ELASTICSEARCH_URL: es.url });
  const { lifecycle } = startInProcessIngest(t, settings);
  await eventually(async () => (await lifecycle.readiness()).ready, 10_000);
  await es.outage('refuse');
  await eventually(async () => (await lifecycle.readiness()).checks.elasticsearch === false, 10_000);
  await es.endOutage();
  await eventually(async () => (await lifecycle.readiness()).ready, 10_000);
});
