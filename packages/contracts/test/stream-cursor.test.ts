import t from 'tap';
import { compareCursors, deviceLogName, entityIdFromLogChannel, formatCursor, logChannelName, logChannelPattern, parseCursor, MAX_CURSOR_LENGTH } from '../src/index.js';

t.test('a cursor round-trips, and anything else parses to undefined', async (t) => {
  const position = { epoch: 'Zx9_-aB3cD4e', ms: 1_764_900_000_123, offset: 42 };
  const cursor = formatCursor(position);
  t.equal(cursor, 'Zx9_-aB3cD4e:1764900000123-42');
  t.same(parseCursor(cursor), position);
  t.ok(cursor.length <= MAX_CURSOR_LENGTH);
  for (const bad of ['', 'abc', 'e:1-', 'e:-1', 'e:1-2-3', 'e:x-1', ':1-1', 'e f:1-1', 'e:1-1 ', `${'e'.repeat(33)}:1-1`, 'e:1-1234567890123456'])
    t.equal(parseCursor(bad), undefined, JSON.stringify(bad));
});

t.test('two cursors of a device: same history (before / same / after) or a reset', async (t) => {
  const at = (epoch: string, offset: number) => ({ epoch, ms: 1000 + offset, offset });
  t.equal(compareCursors(at('E', 3), at('E', 5)), 'before');
  t.equal(compareCursors(at('E', 5), at('E', 5)), 'same', 'nothing new');
  t.equal(compareCursors(at('E', 7), at('E', 5)), 'after');
  t.equal(compareCursors(at('F', 1), at('E', 5)), 'reset', 'history reset, whatever the offsets');
  t.equal(compareCursors(at('F', 9), at('E', 5)), 'reset');
});

t.test('device names share one hash tag and never alias, whatever the entity id holds', async (t) => {
  const ids = ['dev-1', 'a:b', 'a}b', 'a{b', '}', '{', '%7D', '%', 'x}:live', 'live', 'a}:head', 'a'];
  const names = new Set<string>();
  for (const id of ids) {
    const channel = logChannelName('iot', id);
    t.equal(entityIdFromLogChannel('iot', channel), id, `${id} round-trips through its channel name`);
    for (const kind of ['head', 'stream', 'batches', 'live']) {
      const name = deviceLogName('iot', id, kind);
      names.add(name);
      // Redis hashes the text between the first `{` and the first `}` after it.
      const open = name.indexOf('{');
      const tag = name.slice(open + 1, name.indexOf('}', open + 1));
      t.ok(tag.length > 0, 'the tag is never empty');
      t.equal(tag, name.slice(open + 1, name.lastIndexOf('}')), `${id}: the tag is the whole device part`);
    }
  }
  t.equal(names.size, ids.length * 4, 'no two names alike');
  t.equal(logChannelName('iot', 'dev:1'), 'iot:log:{dev:1}:live');
  t.equal(logChannelPattern('iot'), 'iot:log:{*}:live');
  t.equal(entityIdFromLogChannel('iot', 'other:log:{dev}:live'), undefined);
  t.equal(entityIdFromLogChannel('iot', 'iot:log:{a}b}:live'), undefined, 'not a name this prefix makes');
  t.equal(entityIdFromLogChannel('iot', 'iot:log:{}:live'), undefined);
});
