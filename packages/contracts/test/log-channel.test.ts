import t from 'tap';
import { assembleLogChannelMessage, decodeLogChannelMessage, encodeLogChannelMessage, type LogChannelMessage } from '../src/index.js';

const valid: LogChannelMessage = {
  v: 1,
  batch_id: 'q2Vx3.0',
  device_entity_id: 'sensor.e1',
  docs: [{ entity_id: 'sensor.e1', message: 'hello', seq: 0 }, { 1: 'numeric key', nested: { a: [1, 2] } }, {}],
  received_at_ms: 1_700_000_000_000,
  ingested_at_ms: 1_700_000_000_005,
};
const text = (value: unknown) => JSON.stringify(value);

t.test('a message ingest encodes decodes to the same value, from a string or a Buffer', async (t) => {
  const raw = encodeLogChannelMessage(valid);
  t.same(decodeLogChannelMessage(raw), valid);
  t.same(decodeLogChannelMessage(Buffer.from(raw)), valid);
});

t.test('ingest\'s assembly from docs already serialised is the same text as JSON.stringify of the message', async (t) => {
  const { docs, ...header } = valid;
  const raw = assembleLogChannelMessage(header, docs.map((d) => JSON.stringify(d)));
  t.equal(raw, JSON.stringify(valid));
  t.equal(encodeLogChannelMessage(valid), raw);
  t.same(decodeLogChannelMessage(assembleLogChannelMessage({ ...header, device_entity_id: 'quote " and \\ and \u2028' }, ['{}'])), { ...valid, device_entity_id: 'quote " and \\ and \u2028', docs: [{}] });
});

t.test('anything that is not a channel message decodes to undefined, without throwing', async (t) => {
  const invalid: Record<string, string> = {
    'not JSON': '{"v":1,',
    'JSON null': 'null',
    'a JSON array': text([valid]),
    'version 2': text({ ...valid, v: 2 }),
    'an unknown property': text({ ...valid, extra: true }),
    'no batch_id': text({ ...valid, batch_id: undefined }),
    'an empty batch_id': text({ ...valid, batch_id: '' }),
    'a batch_id over 128 characters': text({ ...valid, batch_id: 'x'.repeat(129) }),
    'an empty device_entity_id': text({ ...valid, device_entity_id: '' }),
    'a numeric device_entity_id': text({ ...valid, device_entity_id: 7 }),
    'no docs': text({ ...valid, docs: [] }),
    'a doc that is an array': text({ ...valid, docs: [[1]] }),
    'a doc that is null': text({ ...valid, docs: [null] }),
    'a doc that is a string': text({ ...valid, docs: ['line'] }),
    'a fractional received_at_ms': text({ ...valid, received_at_ms: 1.5 }),
    'a negative ingested_at_ms': text({ ...valid, ingested_at_ms: -1 }),
    'a string received_at_ms': text({ ...valid, received_at_ms: '1' }),
  };
  for (const [what, raw] of Object.entries(invalid)) t.equal(decodeLogChannelMessage(raw), undefined, what);
  t.equal(decodeLogChannelMessage(Buffer.from([0xff, 0xfe])), undefined, 'bytes that are not UTF-8 JSON');
});

t.test('the bounds themselves are accepted', async (t) => {
  t.ok(decodeLogChannelMessage(text({ ...valid, batch_id: 'x'.repeat(128) })), 'a batch_id of 128 characters');
  t.ok(decodeLogChannelMessage(text({ ...valid, received_at_ms: 0, ingested_at_ms: 0 })), 'epoch 0');
});
