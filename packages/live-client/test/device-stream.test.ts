import t from 'tap';
import { DeviceStream, type DeviceStreamNotice } from '../src/device-stream.js';

/** A stream and what it told the page; `shown()` is the `n` of every line shown, in order. */
function setup() {
  const notices: DeviceStreamNotice[] = [];
  const stream = new DeviceStream((n) => notices.push(n));
  const shown = () => notices.flatMap((n) => (n.kind === 'lines' ? n.lines.map((l) => l.doc.n as number) : []));
  const others = () => notices.filter((n) => n.kind !== 'lines');
  return { stream, notices, shown, others };
}

/** An event carrying lines `from`..`to` (offsets = n) of epoch `epoch`. */
function event(stream: DeviceStream, from: number, to: number, epoch = 'E1') {
  const docs = [];
  for (let n = from; n <= to; n++) docs.push({ n });
  stream.receive(docs, docs.map((d) => `id-${epoch}-${d.n}`), `${epoch}:${1000 + to}-${to}`);
}

t.test('a take-over repeat (same cursors) is dropped and counted; the resume cursor is the last line shown', async (t) => {
  const { stream, shown, others } = setup();
  stream.answer('E1:1000-0', undefined, undefined);
  event(stream, 1, 5);
  event(stream, 4, 8); // the new owner replays from its last checkpoint (4)
  t.same(shown(), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.equal(stream.duplicates, 2);
  t.same(others(), []);
  t.equal(stream.resumeCursor, 'E1:1008-8');
});

t.test('a resume: live lines that arrive before the replay are held, then everything shows once, in order', async (t) => {
  const { stream, shown, others } = setup();
  stream.answer('E1:1000-0', undefined, undefined);
  event(stream, 1, 3);
  stream.beginResume(); // reconnected; resubscribe with since E1:1003-3 in flight
  event(stream, 7, 8); // the carried-over subscription delivers live lines first
  stream.answer('E1:1006-6', 'E1:1003-3', true);
  t.same(shown(), [1, 2, 3], 'nothing past the gap shown yet');
  event(stream, 4, 6); // the replay
  t.same(shown(), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.same(others(), [], 'no gap reported');
  t.notOk(stream.resuming);
});

t.test('recovered:false reports the unrecovered range and continues at the answer cursor; a new epoch is a reset', async (t) => {
  const { stream, shown, others } = setup();
  stream.answer('E1:1000-0', undefined, undefined);
  event(stream, 1, 3);
  stream.beginResume();
  event(stream, 2, 2, 'E2'); // the new history's live line, before the answer
  stream.answer('E2:2000-1', 'E1:1003-3', false);
  t.same(others(), [
    { kind: 'unrecovered', since: 'E1:1003-3', cursor: 'E2:2000-1' },
    { kind: 'reset', from: 'E1:1003-3', to: 'E2:2000-1' },
  ]);
  t.same(shown(), [1, 2, 3, 2], 'the held line of the new epoch shows after the answer');
  event(stream, 3, 3, 'E2');
  t.same(shown(), [1, 2, 3, 2, 3]);
  t.equal(stream.resumeCursor, 'E2:1003-3');
});

t.test('outside a resume, skipped offsets are a gap and a new epoch a reset; the lines still show', async (t) => {
  const { stream, shown, others } = setup();
  stream.answer('E1:1000-0', undefined, undefined);
  event(stream, 1, 2);
  event(stream, 5, 6);
  event(stream, 1, 1, 'E9');
  t.same(shown(), [1, 2, 5, 6, 1]);
  t.same(others(), [
    { kind: 'gap', after: 'E1:1002-2', missing: 2 },
    { kind: 'reset', from: 'E1:1006-6', to: 'E9:1001-1' },
  ]);
});

t.test('a replay that never comes: giving up shows the held lines and reports the gap', async (t) => {
  const { stream, shown, others } = setup();
  stream.answer('E1:1000-0', undefined, undefined);
  event(stream, 1, 1);
  stream.beginResume();
  stream.answer('E1:1004-4', 'E1:1001-1', true);
  event(stream, 5, 5);
  t.same(shown(), [1]);
  stream.finishResume();
  t.same(shown(), [1, 5]);
  t.same(others(), [{ kind: 'gap', after: 'E1:1001-1', missing: 3 }]);
});

t.test('events without a cursor are deduplicated by line id', async (t) => {
  const { stream, shown } = setup();
  stream.receive([{ n: 1 }, { n: 2 }], ['a', 'b'], undefined);
  stream.receive([{ n: 2 }, { n: 3 }], ['b', 'c'], undefined);
  t.same(shown(), [1, 2, 3]);
  t.equal(stream.duplicates, 1);
});
