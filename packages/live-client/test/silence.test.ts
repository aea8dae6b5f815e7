import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLiveClient, type LiveClient } from '../src/index.js';
import type { EventSourceLike } from '../src/types.js';

/**
 * The client's silence watchdog against a scripted EventSource: what a page sees when the stream
 * stays open but nobody serves it any more (docs/streams-api.md, "Signs of life").
 */
class ScriptedSource implements EventSourceLike {
  static opened: ScriptedSource[] = [];
  readyState = 1;
  closed = false;
  onmessage: ((event: { data: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  private readonly named = new Map<string, (event: { data: string }) => void>();

  constructor(readonly url: string) {
    ScriptedSource.opened.push(this);
  }
  addEventListener(type: string, listener: (event: { data: string }) => void): void {
    this.named.set(type, listener);
  }
  close(): void {
    this.closed = true;
  }
  ready(): void {
    this.named.get('ready')?.({ data: '' });
  }
  envelope(type: string, payload: unknown): void {
    this.onmessage?.({ data: JSON.stringify({ type, payload }) });
  }
}

function client(t: { teardown(fn: () => void): void }): { live: LiveClient; silent: number[]; events: string[] } {
  ScriptedSource.opened = [];
  const live = createLiveClient({
    gatewayUrl: 'http://gateway.test',
    EventSource: ScriptedSource,
    fetch: async () => ({ status: 200, json: async () => ({ status: 'subscribed', device_entity_id: 'sensor.a' }) }),
    reconnectDelayMs: { min: 10, max: 10 },
  });
  t.teardown(() => live.close());
  const silent: number[] = [];
  const events: string[] = [];
  live.on('silent', ({ silentForMs }) => silent.push(silentForMs));
  live.on('event', ({ type }) => events.push(type));
  return { live, silent, events };
}

t.test('a stream silent for longer than stream-alive promised is reopened, with a silent notice', async (t) => {
  const { live, silent, events } = client(t);
  const first = ScriptedSource.opened[0]!;
  first.ready();
  first.envelope('stream-alive', { next_within_s: 0.2 });
  t.equal(live.state, 'connected');
  await sleep(400);
  t.same(silent, [200], 'told after the promised 200 ms');
  t.ok(first.closed, 'the silent stream was closed');
  await sleep(50);
  t.equal(ScriptedSource.opened.length, 2, 'and a new one opened');
  t.equal(live.stats.silentReopens, 1);
  t.same(events, [], 'stream-alive is not passed on as an event');
});

t.test('events keep a stream alive; before the first stream-alive nothing is assumed', async (t) => {
  const { silent } = client(t);
  const source = ScriptedSource.opened[0]!;
  source.ready();
  await sleep(300);
  t.same(silent, [], 'no promise heard yet: no watchdog');
  source.envelope('stream-alive', { next_within_s: 0.2 });
  for (let i = 0; i < 6; i++) {
    await sleep(100);
    source.envelope('rotation-updated', {}); // any event proves the stream is served
  }
  t.same(silent, [], 'never silent for 200 ms');
  t.equal(ScriptedSource.opened.length, 1);
});

t.test('a closed client sets no watchdog off', async (t) => {
  const { live, silent } = client(t);
  const source = ScriptedSource.opened[0]!;
  source.ready();
  source.envelope('stream-alive', { next_within_s: 0.1 });
  live.close();
  await sleep(250);
  t.same(silent, []);
  t.equal(ScriptedSource.opened.length, 1);
});
