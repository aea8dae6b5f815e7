import t from 'tap';
import { MAX_JSON_DEPTH, dailyIndexName, documentId, parseMqttMessage, payloadDigest } from '../src/index.js';

const OPTS = { indexPrefix: 'logstash-http-', entityField: 'entity_id' };
const RECEIVED = Date.UTC(2026, 0, 31, 23, 59, 59, 250);

function ndjson(...lines: string[]): Buffer {
  return Buffer.from(lines.join('\n'));
}

t.test('a line keeps its fields, loses relative_time, gets @timestamp = receipt and a clean message', async (t) => {
  const payload = ndjson(JSON.stringify({ entity_id: 'dev-1', message: '\u001b[32mOK\u001b[0m', relative_time: 12.5, level: 'info', nested: { a: [1, 2] }, '@timestamp': 'device clock' }));
  const m = await parseMqttMessage(payload, RECEIVED, OPTS);
  t.equal(m.status, 'ok');
  t.equal(m.lines.length, 1);
  const line = m.lines[0]!;
  t.same(line.doc, { entity_id: 'dev-1', message: 'OK', level: 'info', nested: { a: [1, 2] }, '@timestamp': '2026-01-31T23:59:59.250Z' });
  t.notOk('relative_time' in line.doc);
  t.equal(line.entityId, 'dev-1');
  t.equal(line.index, 'logstash-http-2026.01.31', 'UTC date of receipt');
  t.equal(line.id, documentId(payloadDigest(payload), 0));
});

t.test('ids are a function of the payload and the line position only', async (t) => {
  const payload = ndjson('{"message":"a"}', '', 'not json', '{"message":"b"}');
  const first = await parseMqttMessage(payload, RECEIVED, OPTS);
  const redelivered = await parseMqttMessage(Buffer.from(payload), RECEIVED + 60_000, OPTS);
  t.same(
    first.lines.map((l) => l.id),
    redelivered.lines.map((l) => l.id),
    'a redelivery yields the same _ids',
  );
  t.same(
    first.lines.map((l) => l.id.split('-').pop()),
    ['0', '3'],
    'line indexes count every physical line, blank and invalid ones too',
  );
  const other = await parseMqttMessage(ndjson('{"message":"a"}', '', 'not json', '{"message":"c"}'), RECEIVED, OPTS);
  t.not(other.lines[0]!.id, first.lines[0]!.id, 'a different payload gives different ids');
});

t.test('the daily index follows the UTC date of receipt', async (t) => {
  t.equal(dailyIndexName('p-', Date.UTC(2026, 11, 31, 23, 59, 59, 999)), 'p-2026.12.31');
  t.equal(dailyIndexName('p-', Date.UTC(2027, 0, 1, 0, 0, 0, 0)), 'p-2027.01.01');
});

t.test('entity id: strings and numbers stream, anything else is stored without streaming', async (t) => {
  const m = await parseMqttMessage(ndjson('{"entity_id":"e1"}', '{"entity_id":42}', '{"entity_id":""}', '{"entity_id":{"x":1}}', '{"message":"no entity"}'), RECEIVED, OPTS);
  t.same(
    m.lines.map((l) => l.entityId),
    ['e1', '42', undefined, undefined, undefined],
  );
  t.equal(m.lines.length, 5, 'every line is stored');
});

t.test('invalid lines are skipped and counted; the rest of the message goes on', async (t) => {
  const badUtf8 = Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]); // {"m":"\xff\xfe"}
  const deep = '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1);
  const payload = Buffer.concat([
    ndjson('{"message":"first"}', '{oops', '[1,2]', '"str"', 'null', '42', deep, ''),
    badUtf8,
    Buffer.from('\r\n{"message":{"code":7,"t":"\\u001b[1mbold"}}\r\n{"message":"last"}\n\n   \n'),
  ]);
  const m = await parseMqttMessage(payload, RECEIVED, OPTS);
  t.equal(m.status, 'partial');
  t.same(m.lineCounts, { ok: 2, message_not_string: 1, invalid_utf8: 1, invalid_json: 1, not_object: 4, too_deep: 1 });
  t.same(
    m.lines.map((l) => l.doc.message),
    ['first', '{"code":7,"t":"bold"}', 'last'],
    'a non-string message is stored as its JSON text (escapes stripped inside); CRLF line ends are fine',
  );
});

t.test('nesting up to the limit is kept; brackets inside strings do not count', async (t) => {
  const nested = '{"a":'.repeat(MAX_JSON_DEPTH - 1) + '{"message":"[[[[{{{{"}' + '}'.repeat(MAX_JSON_DEPTH - 1);
  const m = await parseMqttMessage(Buffer.from(nested), RECEIVED, OPTS);
  t.equal(m.status, 'ok');
  t.equal(m.lines.length, 1);
});

t.test('hostile depth (100,000 levels) is refused, not a crash', async (t) => {
  const m = await parseMqttMessage(Buffer.from('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)), RECEIVED, OPTS);
  t.equal(m.status, 'invalid');
  t.equal(m.lineCounts.too_deep, 1);
});

t.test('empty and whitespace-only messages', async (t) => {
  for (const payload of [Buffer.alloc(0), Buffer.from('\n\n'), Buffer.from(' \r\n\t\n')]) {
    const m = await parseMqttMessage(payload, RECEIVED, OPTS);
    t.equal(m.status, 'empty');
    t.equal(m.lines.length, 0);
  }
});

t.test('a message with no usable line is invalid', async (t) => {
  const m = await parseMqttMessage(ndjson('[]', 'nope'), RECEIVED, OPTS);
  t.equal(m.status, 'invalid');
});

t.test('100,000 lines are parsed while the event loop keeps turning', async (t) => {
  const lines = Array.from({ length: 100_000 }, (_, i) => JSON.stringify({ entity_id: `e${i % 7}`, message: `line ${i}` }));
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 0);
  const m = await parseMqttMessage(ndjson(...lines), RECEIVED, { ...OPTS, linesPerTurn: 1000 });
  clearInterval(ticker);
  t.equal(m.lines.length, 100_000);
  t.equal(m.lines[99_999]!.doc.message, 'line 99999');
  t.ok(ticks > 0, 'timers ran during the parse (MQTT keepalives are timers)');
});

t.test('a 1 MB single-line message is stored whole', async (t) => {
  const big = 'x'.repeat(1024 * 1024);
  const m = await parseMqttMessage(Buffer.from(JSON.stringify({ message: big })), RECEIVED, OPTS);
  t.equal(m.status, 'ok');
  t.equal((m.lines[0]!.doc.message as string).length, big.length);
});

t.test('a "__proto__" field is data, not a prototype', async (t) => {
  const m = await parseMqttMessage(Buffer.from('{"__proto__":{"polluted":true},"message":"m"}'), RECEIVED, OPTS);
  const doc = m.lines[0]!.doc;
  t.equal(Object.getPrototypeOf(doc), Object.prototype);
  t.ok(Object.hasOwn(doc, '__proto__'));
  t.equal(JSON.stringify(doc).includes('"__proto__":{"polluted":true}'), true, 'stored as sent');
});
