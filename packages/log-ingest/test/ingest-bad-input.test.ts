import t from 'tap';
import { eventually, metricValue } from '@iotsupport/testkit';
import { dailyIndexName, documentId, payloadDigest } from '../src/index.js';
import { startIngestRig } from './harness.js';

t.test('bad input never crashes or blocks ingest, and each kind is counted', async (t) => {
  const { es, fanout, registry, lifecycle, publisher } = await startIngestRig(t);
  const index = () => dailyIndexName('logstash-http-', Date.now());
  es.rejectItems({ status: 400, type: 'mapper_parsing_exception', reason: 'failed to parse field [poison]', when: (item) => item.document?.poison === true });

  const bigMessage = 'x'.repeat(1024 * 1024);
  const manyLines = Array.from({ length: 100_000 }, (_, i) => `{"entity_id":"many","seq":${i}}`).join('\n');
  const inputs: Array<[string, string | Buffer]> = [
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])],
    ['JSON array', '[1,2,3]'],
    ['JSON string', '"just a string"'],
    ['JSON null', 'null'],
    ['non-string message', '{"entity_id":"odd","message":{"code":7,"text":"\\u001b[1mbold"}}'],
    ['deeply nested', '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)],
    ['1 MB message', JSON.stringify({ entity_id: 'big', message: bigMessage })],
    ['100,000 lines', manyLines],
    ['empty', ''],
    ['blank lines only', '\n\n  \n'],
    ['permanently refused line', '{"entity_id":"p","message":"poison pill","poison":true}\n{"entity_id":"p","message":"fine"}'],
  ];
  for (const [, payload] of inputs) await publisher.publish(payload);
  const last = JSON.stringify({ entity_id: 'after', message: 'still flowing' });
  await publisher.publish(last);

  await eventually(() => es.get(index(), documentId(payloadDigest(Buffer.from(last)), 0)), 60_000);
  await eventually(async () => (await metricValue(registry, 'iot_logsink_unacked_messages')) === 0, 30_000);

  const idOf = (name: string, line = 0) => {
    const payload = inputs.find(([n]) => n === name)![1];
    return documentId(payloadDigest(typeof payload === 'string' ? Buffer.from(payload) : payload), line);
  };
  t.equal(es.get(index(), idOf('non-string message'))?.message, '{"code":7,"text":"bold"}', 'non-string message stored as its JSON text, escapes stripped');
  t.equal((es.get(index(), idOf('1 MB message'))?.message as string | undefined)?.length, bigMessage.length, '1 MB message stored whole');
  t.equal(es.count(`${index()}`) - 1 - 1 - 1 - 1, 100_000, 'all 100,000 lines stored (besides odd, big, fine, after)');
  t.ok(es.get(index(), idOf('100,000 lines', 99_999)));
  t.equal(es.get(index(), idOf('permanently refused line', 1))?.message, 'fine', 'the line next to a refused one is stored');
  const dead = es.get('iotsupport-deadletter', idOf('permanently refused line', 0));
  t.match(dead, { failed_index: index(), status: 400, error_type: 'mapper_parsing_exception', error_reason: 'failed to parse field [poison]' });
  t.match(JSON.parse(dead!.source as string), { message: 'poison pill', poison: true });

  const messages = async (status: string) => metricValue(registry, 'iot_logsink_messages_received_total', { status });
  const lines = async (status: string) => metricValue(registry, 'iot_logsink_lines_received_total', { status });
  t.equal(await messages('invalid'), 5, 'invalid UTF-8, array, string, null, deep: no usable line');
  t.equal(await messages('empty'), 2);
  t.equal(await messages('ok'), 5, 'non-string message, 1 MB, 100k lines, poison pair, last');
  t.equal(await lines('invalid_utf8'), 1);
  t.equal(await lines('not_object'), 3);
  t.equal(await lines('too_deep'), 1);
  t.equal(await lines('message_not_string'), 1);
  t.equal(await metricValue(registry, 'iot_logsink_dead_lettered_lines_total', { reason: 'mapper_parsing_exception' }), 1);
  t.ok((await lifecycle.readiness()).ready, 'still ready');

  await eventually(() => fanout.all.some((f) => f.message.device_entity_id === 'after'), 10_000);
  const manyStreamed = fanout.all.filter((f) => f.message.device_entity_id === 'many').flatMap((f) => f.message.docs.map((d) => d.seq));
  t.equal(manyStreamed.length, 100_000, 'the 100,000 lines are streamed too, split into parts');
  t.same(manyStreamed.slice(0, 3), [0, 1, 2]);
  t.notOk(fanout.all.some((f) => f.message.device_entity_id === 'p' && f.message.docs.some((d) => d.poison)), 'a dead-lettered line is not streamed');
});
