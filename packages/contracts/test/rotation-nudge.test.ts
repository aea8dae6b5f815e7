import t from 'tap';
import { NUDGE_SOURCES, decodeRotationNudge, encodeRotationNudge, publishRotationNudge, rotationNudgeChannel } from '../src/index.js';

t.test('every source encodes to a nudge that decodes back, from a string or a Buffer', async (t) => {
  for (const source of NUDGE_SOURCES) {
    const raw = encodeRotationNudge(source, 1234);
    t.same(decodeRotationNudge(raw), { v: 1, source, at_ms: 1234 }, source);
    t.same(decodeRotationNudge(Buffer.from(raw)), { v: 1, source, at_ms: 1234 }, `${source} (Buffer)`);
  }
});

t.test('anything that is not a nudge decodes to undefined, without throwing', async (t) => {
  const valid = { v: 1, source: 'web', at_ms: 1 };
  const invalid: Record<string, string> = {
    'not JSON': '{',
    'JSON null': 'null',
    'an empty object': '{}',
    'version 2': JSON.stringify({ ...valid, v: 2 }),
    'an unknown source': JSON.stringify({ ...valid, source: 'cron' }),
    'an unknown property': JSON.stringify({ ...valid, extra: 1 }),
    'a negative at_ms': JSON.stringify({ ...valid, at_ms: -1 }),
    'a fractional at_ms': JSON.stringify({ ...valid, at_ms: 0.5 }),
    'no at_ms': JSON.stringify({ v: 1, source: 'web' }),
  };
  for (const [what, raw] of Object.entries(invalid)) t.equal(decodeRotationNudge(raw), undefined, what);
});

t.test('publishRotationNudge: one message on the prefix\'s nudge channel that decodes to the source, resolving with the listener count', async (t) => {
  const published: Array<[string, string]> = [];
  const publisher = {
    publish: async (channel: string, message: string) => {
      published.push([channel, message]);
      return 3; // what Redis answers: the number of subscribers that heard it
    },
  };
  const before = Date.now();
  t.equal(await publishRotationNudge(publisher, 'tenant_x', 'worker'), 3, 'the count PUBLISH answered');
  t.equal(published.length, 1, 'exactly one message');
  const [channel, message] = published[0]!;
  t.equal(channel, rotationNudgeChannel('tenant_x'));
  const nudge = decodeRotationNudge(message);
  t.equal(nudge?.source, 'worker');
  t.ok(nudge && nudge.at_ms >= before, 'stamped with the publishing time');
});
