import t from 'tap';
import { Registry } from 'prom-client';
import { eventually, freePort, metricValue } from '@iotsupport/testkit';
import {
  GatewayBodyTooLargeError,
  GatewayClient,
  GatewayEventDataError,
  GatewayReservedEventNameError,
  MAX_SEND_BODY_BYTES,
  eventDataBudget,
  prepareEvent,
  type GatewayClientOptions,
} from '../src/index.js';
import { startFakeGateway, type FakeGateway } from './fake-gateway.js';

async function setup(t: { teardown(fn: () => unknown): void }, overrides: Partial<GatewayClientOptions> = {}) {
  const gateway = await startFakeGateway();
  const registry = new Registry();
  const gone: string[] = [];
  const client = new GatewayClient({
    baseUrl: gateway.url,
    concurrency: 4,
    timeoutMs: 2000,
    retries: 2,
    queueLimit: 100,
    registry,
    retryBaseDelayMs: 5,
    onGone: (token) => gone.push(token),
    ...overrides,
  });
  t.teardown(async () => {
    await client.destroy();
    await gateway.close();
  });
  return { gateway, registry, client, gone };
}

const event = (seq: number, extra: Record<string, unknown> = {}) => ({ name: 'device-logs', data: JSON.stringify({ seq, ...extra }) });
const payloads = (gateway: FakeGateway, token: string) => gateway.forToken(token).map((r) => JSON.parse(r.event?.data ?? '{}') as { seq?: number; dropped?: number });

t.test('a stalled connection does not delay the others, and each connection keeps its order', async (t) => {
  const { gateway, client } = await setup(t);
  const fast = ['a', 'b', 'c', 'd'];
  gateway.connect('slow', ...fast);
  gateway.hold('slow');
  for (let i = 0; i < 3; i++) void client.send('slow', event(i));
  for (let i = 0; i < 25; i++) for (const token of fast) void client.send(token, event(i));

  await eventually(() => fast.every((token) => gateway.forToken(token).length === 25));
  t.equal(gateway.forToken('slow').length, 0, 'the stalled connection has delivered nothing yet');
  for (const token of fast) t.same(payloads(gateway, token).map((p) => p.seq), [...Array(25).keys()], `${token} in order`);

  gateway.release('slow');
  await eventually(() => gateway.forToken('slow').length === 3);
  t.same(payloads(gateway, 'slow').map((p) => p.seq), [0, 1, 2], 'the stalled connection catches up in order');
  await client.idle();
  t.equal(client.queueDepth, 0);
});

t.test('concurrency is bounded over all connections and TCP connections are reused', async (t) => {
  const { gateway, client } = await setup(t, { concurrency: 4 });
  const tokens = Array.from({ length: 20 }, (_, i) => `tok-${i}`);
  gateway.connect(...tokens);
  for (const token of tokens) gateway.hold(token);
  for (const token of tokens) void client.send(token, event(0));
  await eventually(() => gateway.open() === 4);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(gateway.maxOpen(), 4, 'never more than GATEWAY_SEND_CONCURRENCY requests open');
  for (const token of tokens) gateway.release(token);
  for (let round = 1; round < 5; round++) for (const token of tokens) void client.send(token, event(round));
  await eventually(() => gateway.received.length === 100);
  t.equal(gateway.maxOpen(), 4);
  t.ok(gateway.tcpConnections() <= 4, `100 sends over ${gateway.tcpConnections()} keep-alive connections`);
});

t.test('a full queue drops new events, counts them, and the next delivered event says how many', async (t) => {
  const { gateway, client, registry } = await setup(t, { queueLimit: 5 });
  gateway.connect('slow', 'other');
  gateway.hold('slow');
  const outcomes = Array.from({ length: 9 }, (_, i) => client.send('slow', event(i)));
  await eventually(() => gateway.open() === 1);
  t.equal(client.queueLength('slow'), 5, 'the queue is bounded');
  const dropped = await Promise.all(outcomes.slice(6));
  t.same(dropped.map((o) => o.status), ['dropped', 'dropped', 'dropped']);
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total', { reason: 'queue_full' }), 3);

  void client.send('other', event(0));
  await eventually(() => gateway.forToken('other').length === 1);

  gateway.release('slow');
  await Promise.all(outcomes.slice(0, 6));
  t.same(payloads(gateway, 'slow').map((p) => p.dropped), [undefined, undefined, undefined, undefined, undefined, undefined]);
  const next = await client.send('slow', event(9));
  t.equal(next.status, 'ok');
  const last = payloads(gateway, 'slow').at(-1)!;
  t.same(last, { seq: 9, dropped: 3 }, 'the first event after the gap carries the dropped count');
  await client.send('slow', event(10));
  t.same(payloads(gateway, 'slow').at(-1), { seq: 10 }, 'and only that one');
  t.equal(await metricValue(registry, 'sse_gateway_send_queue_depth'), 0);
});

t.test('404: the connection is gone, its queue is discarded, others go on', async (t) => {
  const { gateway, client, gone, registry } = await setup(t);
  gateway.connect('gone', 'alive');
  gateway.hold('gone');
  const first = client.send('gone', event(0));
  const queued = [client.send('gone', event(1)), client.send('gone', event(2))];
  void client.send('alive', event(0));
  await eventually(() => gateway.forToken('alive').length === 1);
  gateway.disconnect('gone'); // the browser left while the first send was in flight
  gateway.release('gone');
  t.same(await first, { status: 'not_found', httpStatus: 404, attempts: 1 });
  t.same((await Promise.all(queued)).map((o) => o.status), ['discarded', 'discarded']);
  t.same(gone, ['gone'], 'onGone ran once for the token');
  t.equal(gateway.forToken('gone').length, 0);
  t.equal(await metricValue(registry, 'sse_gateway_events_sent_total', { status: 'not_found' }), 1);

  gateway.connect('held');
  t.same(await client.probe('held'), { status: 'ok', httpStatus: 200, attempts: 1 }, 'a probe of a held token is 200');
  t.same(await client.probe('orphan'), { status: 'not_found', httpStatus: 404, attempts: 1 }, 'a probe of a token the gateway does not hold is 404');
  t.same(gone, ['gone', 'orphan'], 'a probe that finds no connection reports it gone');
  t.same(await client.probe('gone'), { status: 'not_found', httpStatus: 404, attempts: 1 }, 'a token stays gone');
});

t.test('5xx is retried; exhausted retries drop the event with a metric and mark the next one', async (t) => {
  const { gateway, client, registry } = await setup(t, { retries: 2 });
  gateway.connect('flaky', 'down', 'bad');
  gateway.script('flaky', [500, 500]);
  t.same(await client.send('flaky', event(0)), { status: 'ok', httpStatus: 200, attempts: 3 });

  gateway.script('down', [500, 500, 500]);
  const lost = client.send('down', event(0));
  const after = client.send('down', event(1));
  t.same(await lost, { status: 'failed', httpStatus: 500, attempts: 3 });
  t.equal((await after).status, 'ok');
  t.same(payloads(gateway, 'down'), [{ seq: 1, dropped: 1 }], 'the next event reports the lost one');
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total', { reason: 'retries_exhausted' }), 1);
  t.equal(await metricValue(registry, 'sse_gateway_send_retries_total'), 4);

  gateway.script('bad', [400]);
  t.same(await client.send('bad', event(0)), { status: 'rejected', httpStatus: 400, attempts: 1 }, '400 is not retried');
});

t.test('an event its sender sends again (resent) is no loss: no dropped marker, no dropped count; an earlier gap still reaches the browser', async (t) => {
  const { gateway, client, registry } = await setup(t, { retries: 1, queueLimit: 1 });
  gateway.connect('down');
  gateway.script('down', [500, 500]);
  const resent = { resent: true };
  t.same(await client.send('down', event(0), resent), { status: 'failed', httpStatus: 500, attempts: 2 });
  t.equal((await client.send('down', event(0), resent)).status, 'ok', 'sent again by its sender');
  t.same(payloads(gateway, 'down'), [{ seq: 0 }], 'the browser is not told of a loss that did not happen');
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total'), 0);
  t.equal(await metricValue(registry, 'sse_gateway_events_sent_total', { status: 'failed' }), 1, 'the failed attempt is still counted');

  // A real loss (a full queue), then a resent event carrying its gap fails: the next event reports it.
  gateway.hold('down');
  void client.send('down', event(1), resent);
  await eventually(() => gateway.open() === 1);
  void client.send('down', event(2), resent); // waits: the queue (limit 1) is now full
  t.equal((await client.send('down', event(3), resent)).status, 'dropped', 'queue full: a real loss');
  gateway.release('down');
  await client.idle();
  gateway.script('down', [500, 500]);
  t.equal((await client.send('down', event(4), resent)).status, 'failed', 'the event that was to report the gap fails');
  t.equal((await client.send('down', event(5), resent)).status, 'ok');
  t.same(payloads(gateway, 'down').map((p) => [p.seq, p.dropped]), [[0, undefined], [1, undefined], [2, undefined], [5, 1]], 'the queue-full gap, not the resent failure');
});

t.test('resent events queued behind one that failed for good end unsent, so none overtakes it; other events still go', async (t) => {
  const { gateway, client } = await setup(t, { retries: 1 });
  gateway.connect('flap');
  gateway.script('flap', [500, 500]); // the first event fails on both attempts; the gateway is fine after
  const resent = { resent: true };
  const outcomes = [client.send('flap', event(1), resent), client.send('flap', event(2), resent), client.send('flap', { name: 'rotation-updated', data: '{}' }), client.send('flap', event(3), resent)];
  const [first, second, nudge, third] = await Promise.all(outcomes);
  t.same(first, { status: 'failed', httpStatus: 500, attempts: 2 });
  t.same([second, third], [{ status: 'failed', attempts: 0 }, { status: 'failed', attempts: 0 }], 'ended unsent: their sender sends them again after the first');
  t.equal(nudge!.status, 'ok', 'an event of another kind keeps its place');
  t.same(gateway.forToken('flap').map((r) => r.event?.name), ['rotation-updated'], 'no line reached the browser ahead of the failed one');
});

t.test('a probe may carry a sign-of-life event: the browser gets it, and an unsent one is no drop', async (t) => {
  const { gateway, client, registry } = await setup(t, { retries: 0 });
  gateway.connect('live');
  const alive = { name: 'stream-alive', data: '{"next_within_s":131}' };
  t.same(await client.probe('live', { event: alive }), { status: 'ok', httpStatus: 200, attempts: 1 });
  t.same(gateway.forToken('live').map((r) => r.event), [alive], 'the event went out with the probe');

  gateway.script('live', [500]);
  t.equal((await client.probe('live', { event: alive })).status, 'failed');
  t.equal((await client.send('live', event(1))).status, 'ok');
  t.same(payloads(gateway, 'live').at(-1), { seq: 1 }, 'no dropped marker for a lost sign of life');
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total'), 0);
  t.same(await client.probe('gone', { event: alive }), { status: 'not_found', httpStatus: 404, attempts: 1 }, 'a probe with an event still finds a gone stream');
});

t.test('a gateway that never answers times out, is retried, then given up', async (t) => {
  const { gateway, client, registry } = await setup(t, { timeoutMs: 150, retries: 1 });
  gateway.connect('hang', 'fine');
  gateway.blackhole('hang');
  const outcome = await client.send('hang', event(0));
  t.same(outcome, { status: 'failed', attempts: 2 });
  t.equal(await metricValue(registry, 'sse_gateway_events_sent_total', { status: 'failed' }), 1);
  t.equal((await client.send('fine', event(0))).status, 'ok', 'others still get through');
});

t.test('bodies never exceed 100 kB: oversize and malformed events are refused with typed errors', async (t) => {
  const { gateway, client } = await setup(t);
  gateway.connect('tok');
  const budget = eventDataBudget('device-logs');
  const fits = `{"x":"${'a'.repeat(budget - 8)}"}`;
  t.equal((await client.send('tok', { name: 'device-logs', data: fits })).status, 'ok');
  t.ok(gateway.forToken('tok')[0]!.bytes <= MAX_SEND_BODY_BYTES, 'a body at the budget is within the limit');

  const tooBig = `{"x":"${'a'.repeat(MAX_SEND_BODY_BYTES)}"}`;
  t.throws(() => client.send('tok', { name: 'device-logs', data: tooBig }), GatewayBodyTooLargeError);
  const quoted = `{"x":"${'"'.repeat(60_000)}"}`; // escaping doubles it past the limit
  t.throws(() => client.send('tok', { name: 'device-logs', data: quoted }), GatewayBodyTooLargeError);
  t.throws(() => client.send('tok', { name: 'ready', data: '{}' }), GatewayReservedEventNameError);
  t.throws(() => client.send('tok', { name: 'x', data: '{"a":\n1}' }), GatewayEventDataError);
  t.throws(() => client.send('tok', { name: 'x', data: '[1]' }), GatewayEventDataError);
  await client.idle();
  t.equal(gateway.forToken('tok').length, 1, 'nothing refused reached the gateway');
});

t.test('close(token) ends the connection after what is queued, and nothing after it is sent', async (t) => {
  const { gateway, client, gone } = await setup(t);
  gateway.connect('c');
  void client.send('c', event(0));
  void client.send('c', event(1));
  const closed = await client.close('c');
  t.equal(closed.status, 'ok');
  t.same(
    gateway.forToken('c').map((r) => (r.close ? 'close' : JSON.parse(r.event!.data).seq)),
    [0, 1, 'close'],
  );
  t.same(gateway.forToken('c').at(-1), { token: 'c', close: true, bytes: gateway.forToken('c').at(-1)!.bytes });
  t.notOk(gateway.isConnected('c'), 'the gateway no longer holds the connection');
  t.same(await client.send('c', event(2)), { status: 'not_found', httpStatus: 404, attempts: 1 }, 'a later send goes out as new, and the gateway 404s it');
  t.same(gone, ['c']);
});

t.test('fencing: no attempt starts without ownership, and attempts end before the lease does', async (t) => {
  const leases = new Map<string, number>([['mine', 1999.37], ['short', 300.5]]); // a lease is measured in fractions of ms
  // A lease far shorter than the send timeout: if the attempt were not cut at the lease, this test would hang.
  const { gateway, client, registry } = await setup(t, { fence: (token) => leases.get(token) ?? null, timeoutMs: 60_000, retries: 0 });
  gateway.connect('mine', 'theirs', 'short');
  const fenced = { fenced: true };
  t.equal((await client.send('mine', event(0), fenced)).status, 'ok');
  t.same(await client.send('theirs', event(0), fenced), { status: 'fenced', attempts: 0 });
  t.equal(gateway.forToken('theirs').length, 0);
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total', { reason: 'fenced' }), 1);
  t.equal((await client.close('theirs')).status, 'ok', 'an unfenced close (registry: replacement, expiry) is sent whoever owns it');

  gateway.blackhole('short');
  t.same(await client.send('short', event(0), fenced), { status: 'failed', attempts: 1 }, 'the attempt was cut at the lease, not at GATEWAY_SEND_TIMEOUT_MS');
});

t.test('a queue is bounded in bytes too: large events fill it sooner, an empty queue takes any event', async (t) => {
  const { gateway, client, registry } = await setup(t, { queueLimit: 100, queueBytes: 50_000 });
  gateway.connect('big');
  gateway.hold('big');
  const big = (seq: number) => ({ name: 'device-logs', data: JSON.stringify({ seq, pad: 'x'.repeat(20_000) }) });
  const outcomes = Array.from({ length: 6 }, (_, i) => client.send('big', big(i)));
  await eventually(() => gateway.open() === 1);
  t.equal(client.queueLength('big'), 2, 'one in flight, two waiting (40 kB), the rest would pass 50 kB');
  t.same((await Promise.all(outcomes.slice(3))).map((o) => o.status), ['dropped', 'dropped', 'dropped']);
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total', { reason: 'queue_full' }), 3);
  gateway.release('big');
  await Promise.all(outcomes.slice(0, 3));
  t.equal((await client.send('big', big(6))).status, 'ok', 'space again once they went out');
  t.same(payloads(gateway, 'big').map((p) => [p.seq, p.dropped]), [[0, undefined], [1, undefined], [2, undefined], [6, 3]]);
});

t.test('closes that fail (gateway unreachable) count no dropped event and leave no connection state behind', async (t) => {
  const registry = new Registry();
  // Nothing listens on this port: every attempt is refused.
  const client = new GatewayClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, concurrency: 4, timeoutMs: 500, retries: 1, queueLimit: 100, registry, retryBaseDelayMs: 5 });
  t.teardown(() => client.destroy());

  t.same(await client.send('lost', event(0)), { status: 'failed', attempts: 2 });
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total'), 1, 'a lost event is a drop');

  const tokens = ['lost', ...Array.from({ length: 20 }, (_, i) => `c${i}`)];
  const outcomes = await Promise.all(tokens.map((token) => client.close(token)));
  t.same(outcomes.map((o) => o.status), tokens.map(() => 'failed'), 'every close failed');
  t.equal(await metricValue(registry, 'sse_gateway_events_dropped_total'), 1, 'a close without an event is not a dropped event');
  t.equal(await metricValue(registry, 'sse_gateway_send_queue_depth'), 0);
  t.equal(client.trackedConnections, 0, 'nothing is kept for connections that were closed, even unsuccessfully');
});

t.test('every body is exactly the protocol JSON; a prepared event goes to many connections unchanged', async (t) => {
  const { gateway, client } = await setup(t);
  const data = JSON.stringify({ msg: 'é "quoted" \\ back 😀 \u2028', n: 1 });
  const shared = prepareEvent({ name: 'device-logs', data });
  const tokens = ['a', 'b', 'tök"\\'];
  gateway.connect(...tokens);
  for (const token of tokens) t.equal((await client.send(token, shared)).status, 'ok');
  await client.send('a', { data: '{}' });
  await client.probe('a');
  await client.close('b', { event: { name: 'bye', data: '{"x":1}' } });
  await client.close('a');
  const expected = [
    ...tokens.map((token) => ({ token, event: { name: 'device-logs', data } })),
    { token: 'a', event: { data: '{}' } },
    { token: 'a' },
    { token: 'b', event: { name: 'bye', data: '{"x":1}' }, close: true },
    { token: 'a', close: true },
  ];
  t.same(gateway.received.map((r) => r.raw), expected.map((body) => JSON.stringify(body)), 'byte for byte what JSON.stringify of the protocol body gives');
  t.same(gateway.received.map((r) => r.bytes), expected.map((body) => Buffer.byteLength(JSON.stringify(body))));
  t.throws(() => prepareEvent({ name: 'rejected', data: '{}' }), GatewayReservedEventNameError, 'a prepared event is checked like any other');
  t.throws(() => prepareEvent({ data: 'null' }), GatewayEventDataError);
});
