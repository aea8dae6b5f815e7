import t from 'tap';
import { parseCursor } from '@iotsupport/contracts';
import { MAX_SEND_BODY_BYTES } from '@iotsupport/gateway-client';
import { deviceStreamKeys } from '@iotsupport/log-stream';
import { registryKeys } from '@iotsupport/realtime-state';
import { eventually, type SseClient } from '@iotsupport/testkit';
import { metricValue, startFleet, type Fleet, type FleetOptions, type Pod } from './forwarding-pods.js';
import { dedupedByCursor, receivedLines, streamAppender } from './stream-appender.js';

const ENTITY = 'sensor.stream';

function ownerOf(fleet: Fleet, requestId: string): Pod | undefined {
  return fleet.pods.find((p) => p.forwarding.owned.get(requestId) !== undefined);
}

/** The `seq` of every line a client kept after dropping repeats by cursor, and the repeats. */
function keptSeqs(client: SseClient, entityId = ENTITY): { seqs: number[]; repeats: number; offsets: number[] } {
  const { kept, repeats } = dedupedByCursor(receivedLines(client, entityId));
  return { seqs: kept.map((l) => l.doc.seq as number), repeats, offsets: kept.map((l) => l.position.offset) };
}

/** `count` streams `<name>0..`, each subscribed to ENTITY. */
async function watchers(fleet: Fleet, name: string, count: number): Promise<SseClient[]> {
  const clients: SseClient[] = [];
  for (let i = 0; i < count; i++) {
    clients.push(await fleet.open(`${name}${i}`));
    await fleet.subscribe(`${name}${i}`, 1, ENTITY);
  }
  return clients;
}

/** Two pods; a stream `requestId` watching ENTITY has received its lines 1..5 (seq 1..5). */
async function fiveLinesDelivered(t: Parameters<typeof startFleet>[0], requestId: string, options: FleetOptions = {}) {
  const fleet = await startFleet(t, { pods: 2, ...options });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const client = await fleet.open(requestId);
  await fleet.subscribe(requestId, 1, ENTITY);
  for (let seq = 1; seq <= 5; seq++) await append(ENTITY, `${requestId}.${seq}`, [{ seq }]);
  await eventually(() => keptSeqs(client).seqs.length === 5);
  return { fleet, append, client };
}

/** The `seq` of every device-logs line the gateway got for `token` in sends it answered `status`, in order. */
function sentSeqs(fleet: Fleet, token: string, status: number): number[] {
  return fleet.gateway.sends().flatMap((send) => {
    const body = send.body as { token?: string; event?: { name?: string; data: string } };
    if (send.status !== status || body.token !== token || body.event?.name !== 'device-logs') return [];
    return (JSON.parse(body.event.data) as { logs: Array<{ seq: number }> }).logs.map((doc) => doc.seq);
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

t.test('events carry the lines ids and the cursor of their last line; subscribe answers where the device stands', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  await append(ENTITY, 'before', [{ seq: 0 }]);
  const client = await fleet.open('pos1');
  const answer = await fleet.pods[0]!.connections.subscribe({ requestId: 'pos1', deviceId: 1, entityId: ENTITY, callerSubject: null });
  t.match(answer.cursor, /:\d+-1$/, 'the device stands at its first line');
  t.equal(answer.recovered, undefined, 'no since, no recovered');
  const appended = await append(ENTITY, 'b1', [{ seq: 1 }, { seq: 2 }]);
  await eventually(() => receivedLines(client, ENTITY).length === 2);
  const [event] = client.envelopes().filter((e) => e.type === 'device-logs');
  const payload = event!.payload as { ids: string[]; cursor: string; logs: unknown[] };
  t.same(payload.ids, ['b1.0', 'b1.1'], 'the lines ids, in order');
  t.ok(appended.appended);
  if (appended.appended) t.equal(payload.cursor, `${appended.first.epoch}:${appended.first.ms}-${appended.lastOffset}`, 'the cursor of the last line');
  t.same(keptSeqs(client).seqs, [1, 2], 'the line before the subscribe is not sent');
});

t.test('a stream hears stream-alive every probe interval, promising the next sign of life in time for a take-over', async (t) => {
  const fleet = await startFleet(t, { pods: 2, env: { CONNECTION_PROBE_INTERVAL_SECONDS: '1' } }); // lease 2 s
  const client = await fleet.open('alive');
  const alive = () => client.envelopes().filter((e) => e.type === 'stream-alive');
  await eventually(() => alive().length >= 3, 10_000);
  t.same(alive()[0], { type: 'stream-alive', payload: { next_within_s: 2 * 1 + 2 + 5 } }, '2 probe intervals + the lease + 5 s');
});

t.test('resume inside the window: recovered, exactly the missing lines in order, then live — also when the owner is another pod', async (t) => {
  const { fleet, append, client: first } = await fiveLinesDelivered(t, 'r-first');
  // The page reloads after line 3: the client resumes from line 3's cursor on a new stream.
  const since = receivedLines(first, ENTITY)[2]!.eventCursor;
  first.close();
  for (let seq = 6; seq <= 8; seq++) await append(ENTITY, `a${seq}`, [{ seq }]);

  const second = await fleet.open('r-second');
  const owner = ownerOf(fleet, 'r-second')!;
  const other = fleet.pods.find((p) => p !== owner)!;
  const answer = await other.connections.subscribe({ requestId: 'r-second', deviceId: 1, entityId: ENTITY, callerSubject: null, since: parseCursor(since)! });
  t.equal(answer.recovered, true, 'the window holds every line after since');
  t.match(answer.cursor, /-8$/, 'the device is at line 8');
  await append(ENTITY, 'a9', [{ seq: 9 }]);
  await eventually(() => keptSeqs(second).seqs.includes(9));
  const got = keptSeqs(second);
  t.same(got.seqs, range(4, 9), 'lines 4..8 from the window, then 9 live: no gap');
  t.equal(got.repeats, 0, 'and nothing twice');
  t.equal(await metricValue(other.metrics, 'sse_stream_resumes_total', { outcome: 'recovered' }), 1);
});

t.test('a resume of a device the stream already gets (through another pod) moves its delivery back: repeats carry their cursors', async (t) => {
  const { fleet, append, client } = await fiveLinesDelivered(t, 'rw');
  const since = receivedLines(client, ENTITY)[1]!.eventCursor; // line 2
  const other = fleet.pods.find((p) => p !== ownerOf(fleet, 'rw'))!;
  const answer = await other.connections.subscribe({ requestId: 'rw', deviceId: 1, entityId: ENTITY, callerSubject: null, since: parseCursor(since)! });
  t.equal(answer.recovered, true);
  await append(ENTITY, 'w6', [{ seq: 6 }]);
  await eventually(() => receivedLines(client, ENTITY).some((l) => l.doc.seq === 6));
  t.same(receivedLines(client, ENTITY).map((l) => l.doc.seq), [1, 2, 3, 4, 5, 3, 4, 5, 6], 'lines 3..5 again (the owner replayed after since), then live');
  const kept = keptSeqs(client);
  t.same(kept.seqs, range(1, 6), 'a client dropping repeats by cursor has every line once, in order');
  t.equal(kept.repeats, 3, 'the repeats are exactly the replayed lines it had');
});

t.test('lines whose sends failed on every retry are sent again with the next batch, from the window', async (t) => {
  const failingTokens = new Set<string>();
  const { fleet, append, client } = await fiveLinesDelivered(t, 'sf', { failingTokens });
  const owner = ownerOf(fleet, 'sf')!;
  const token = owner.forwarding.owned.get('sf')!.token;
  failingTokens.add(token); // the gateway answers 503 to this stream's sends
  for (let seq = 6; seq <= 8; seq++) await append(ENTITY, `f${seq}`, [{ seq }]);
  // Line 8 (the last) reached the gateway and was refused; once idle, nothing is left to retry.
  await eventually(() => sentSeqs(fleet, token, 503).includes(8));
  await owner.forwarding.gateway.idle();
  t.same([...new Set(sentSeqs(fleet, token, 503))], range(6, 8), 'every send of lines 6..8 was refused');
  t.ok((await metricValue(owner.metrics, 'sse_device_log_events_sent_total', { status: 'failed' })) >= 1, 'counted as failed for good');
  t.same(keptSeqs(client).seqs, range(1, 5), 'the client has none of them');

  failingTokens.delete(token); // healed: the pod kept its lease, only the next batch can bring them
  await append(ENTITY, 'f9', [{ seq: 9 }]);
  await eventually(() => keptSeqs(client).seqs.includes(9));
  t.same(keptSeqs(client).seqs, range(1, 9), 'after dropping repeats by cursor: every line once, in order');
  t.same(sentSeqs(fleet, token, 200).filter((seq) => seq > 5), range(6, 9), 'the gateway accepted lines 6..8 again, then 9');
  const markers = client.envelopes().filter((e) => (e.payload as { dropped?: number }).dropped !== undefined);
  t.same(markers, [], 'no event told the browser of a loss: nothing was lost');
  t.equal(await metricValue(owner.metrics, 'sse_gateway_events_dropped_total'), 0, 'and no drop was counted');
});

t.test('lines whose sends failed on every retry reach the client even when the device sends nothing more', async (t) => {
  const failingTokens = new Set<string>();
  const { fleet, append, client } = await fiveLinesDelivered(t, 'sq', { failingTokens });
  const owner = ownerOf(fleet, 'sq')!;
  const token = owner.forwarding.owned.get('sq')!.token;
  failingTokens.add(token);
  for (let seq = 6; seq <= 8; seq++) await append(ENTITY, `q${seq}`, [{ seq }]);
  await eventually(() => sentSeqs(fleet, token, 503).includes(8));
  failingTokens.delete(token); // healed; the device stays quiet from now on
  await eventually(() => keptSeqs(client).seqs.length === 8, 10_000);
  t.same(keptSeqs(client).seqs, range(1, 8), 'every line once, in order, without a next batch');
  t.ok((await metricValue(owner.metrics, 'sse_stream_replayed_lines_total', { reason: 'resend' })) >= 1, 'sent again from the window');
});

t.test('resume outside the window or from another epoch: not recovered, delivery starts at the current position', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const append = streamAppender(fleet.publisher, fleet.prefix, { maxLines: 5 });
  const pod = fleet.pods[0]!;
  const first = await append(ENTITY, 'x0', [{ seq: 0 }]);
  for (let seq = 1; seq <= 10; seq++) await append(ENTITY, `x${seq}`, [{ seq }]);
  if (!first.appended) throw new Error('appended');

  const trimmed = await fleet.open('o-trimmed');
  const a = await pod.connections.subscribe({ requestId: 'o-trimmed', deviceId: 1, entityId: ENTITY, callerSubject: null, since: first.first });
  t.equal(a.recovered, false, 'the line after since was trimmed');
  t.match(a.cursor, /-11$/, 'the answer names the current position');

  const reset = await fleet.open('o-epoch');
  const b = await pod.connections.subscribe({ requestId: 'o-epoch', deviceId: 1, entityId: ENTITY, callerSubject: null, since: { epoch: 'an0ldEpoch', ms: 1, offset: 3 } });
  t.equal(b.recovered, false, 'another epoch: history lost');
  t.equal(b.cursor, a.cursor);

  await append(ENTITY, 'x11', [{ seq: 11 }]);
  await eventually(() => keptSeqs(trimmed).seqs.includes(11) && keptSeqs(reset).seqs.includes(11));
  t.same(keptSeqs(trimmed).seqs, [11], 'only lines after the current position');
  t.same(keptSeqs(reset).seqs, [11]);
  t.equal(await metricValue(pod.metrics, 'sse_stream_resumes_total', { outcome: 'not_recovered' }), 2);
});

t.test('checkpoints are written only with the lease renewal, for what the gateway accepted', async (t) => {
  // A long lease: halted, the pod may still send for a while (its fence), and renews only when told.
  const fleet = await startFleet(t, { pods: 1, env: { OWNERSHIP_LEASE_SECONDS: '60' } });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const pod = fleet.pods[0]!;
  const client = await fleet.open('ck');
  const answer = await pod.connections.subscribe({ requestId: 'ck', deviceId: 1, entityId: ENTITY, callerSubject: null });
  const positions = () => fleet.publisher.hgetall(registryKeys(fleet.prefix).positions('ck'));
  t.same(await positions(), { [ENTITY]: answer.cursor }, 'the subscribe recorded where delivery starts');

  pod.forwarding.lease.halt(); // no renewal until we call one
  const writesBefore = await metricValue(pod.metrics, 'sse_stream_checkpoint_writes_total');
  for (let seq = 1; seq <= 20; seq++) await append(ENTITY, `c${seq}`, [{ seq }]);
  await eventually(() => keptSeqs(client).seqs.length === 20);
  await eventually(async () => (await metricValue(pod.metrics, 'sse_device_log_events_sent_total', { status: 'ok' })) >= 20);
  t.same(await positions(), { [ENTITY]: answer.cursor }, '20 accepted sends, no position written between renewals');

  await pod.forwarding.lease.renew();
  const lastCursor = receivedLines(client, ENTITY).at(-1)!.eventCursor;
  t.same(await positions(), { [ENTITY]: lastCursor }, 'the renewal wrote the last accepted line');
  t.equal((await metricValue(pod.metrics, 'sse_stream_checkpoint_writes_total')) - writesBefore, 1, 'one position, one write');
});

t.test('take-over replays from the checkpoint: after dropping repeats by cursor every line arrives once, in order', async (t) => {
  const fleet = await startFleet(t, { pods: 3 });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const clients = await watchers(fleet, 'tk', 9);
  const victim = fleet.pods.reduce((a, b) => (a.forwarding.owned.size >= b.forwarding.owned.size ? a : b));
  const victims = new Set([...victim.forwarding.owned.all()].map((o) => o.requestId));
  let seq = 0;
  let appending = Promise.resolve();
  const flow = setInterval(() => {
    appending = appending.then(async () => void (await append(ENTITY, `t${seq}`, [{ seq: seq++ }])));
  }, 10);
  t.teardown(() => clearInterval(flow));
  await eventually(() => seq > 100);
  fleet.partition(victim); // frozen: no renewal, no checkpoint flush; its fence stops its sends
  const partitionedAt = seq;
  await eventually(() => seq > partitionedAt + 300, 20_000);
  clearInterval(flow);
  await appending;
  const last = seq - 1;
  await eventually(() => clients.every((c) => keptSeqs(c).seqs.at(-1) === last), 30_000);

  let repeats = 0;
  clients.forEach((c, i) => {
    const got = keptSeqs(c);
    repeats += got.repeats;
    t.same(got.seqs, range(got.seqs[0]!, last), `tk${i}${victims.has(`tk${i}`) ? ' (taken over)' : ''}: every line once, in order`);
    t.same(got.offsets, range(got.offsets[0]!, got.offsets.at(-1)!), 'offsets without a gap');
  });
  t.comment(`taken over: ${victims.size} connections; raw repeats before the cursor dedupe: ${repeats}`);
  const live = fleet.pods.filter((p) => p !== victim);
  const replayed = (await Promise.all(live.map((p) => metricValue(p.metrics, 'sse_stream_replayed_lines_total', { reason: 'takeover' })))).reduce((a, b) => a + b, 0);
  t.ok(replayed > 0, `the new owners replayed ${replayed} lines from the window`);
});

t.test('registry lost (its keys deleted): every stream is closed at the gateway within 10 s, and the pods serve again', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const clients = await watchers(fleet, 'rl', 6);
  await append(ENTITY, 'l1', [{ seq: 1 }]);
  await eventually(() => clients.every((c) => keptSeqs(c).seqs.length === 1));

  const keys = await fleet.publisher.keys(`${fleet.prefix}:*`);
  await fleet.publisher.del(...keys); // what FLUSHDB or an empty restart does to this prefix
  await eventually(() => clients.every((c) => c.isEnded), 10_000);
  t.pass('every stream was closed at the gateway');
  const closed = (await Promise.all(fleet.pods.map((p) => metricValue(p.metrics, 'sse_streams_closed_state_loss_total', { reason: 'registry_lost' })))).reduce((a, b) => a + b, 0);
  t.equal(closed, clients.length, 'counted as closed for state loss');

  // The browser reconnects and resumes: the device's history is new (another epoch).
  await eventually(() => fleet.pods.every((p) => p.forwarding.ready));
  const back = await fleet.open('rl-back');
  const answer = await fleet.pods[0]!.connections.subscribe({
    requestId: 'rl-back',
    deviceId: 1,
    entityId: ENTITY,
    callerSubject: null,
    since: parseCursor(receivedLines(clients[0]!, ENTITY)[0]!.eventCursor)!,
  });
  t.equal(answer.recovered, false, 'the old cursor belongs to a lost history');
  await append(ENTITY, 'l2', [{ seq: 2 }]);
  await eventually(() => keptSeqs(back).seqs.includes(2));
  t.pass('new lines arrive after the reconnect');
});

t.test('lease lost: connections still in the registry are taken over and served, one the registry forgot is closed', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const clients = new Map<string, SseClient>();
  for (let i = 0; i < 6; i++) {
    clients.set(`ll${i}`, await fleet.open(`ll${i}`));
    await fleet.subscribe(`ll${i}`, 1, ENTITY);
  }
  const victim = fleet.pods.reduce((a, b) => (a.forwarding.owned.size >= b.forwarding.owned.size ? a : b));
  const owned = [...victim.forwarding.owned.all()].map((o) => o.requestId);
  const forgotten = owned[0]!;
  const keys = registryKeys(fleet.prefix);
  // The registry forgets one connection without anyone closing it (a partial loss), and the
  // victim's lease (a failover that lost the last writes).
  const token = await fleet.publisher.hget(keys.connection(forgotten), 'token');
  await fleet.publisher.multi().del(keys.connection(forgotten), keys.connectionDevices(forgotten), keys.positions(forgotten)).hdel(keys.tokens, token!).srem(keys.watchers(ENTITY), forgotten).zrem(keys.byLastSeen, forgotten).zrem(keys.byOwner, forgotten).hincrby(keys.counts, 'subscriptions', -1).exec();
  await fleet.publisher.zrem(keys.pods, victim.forwarding.lease.instance!);

  await eventually(() => clients.get(forgotten)!.isEnded, 10_000);
  t.pass('the forgotten connection was closed at the gateway (its browser reconnects)');
  await eventually(async () => (await metricValue(victim.metrics, 'sse_ownership_lease_lost_total')) >= 1, 10_000);
  await eventually(() => owned.slice(1).every((rid) => ownerOf(fleet, rid) !== undefined), 10_000);
  await append(ENTITY, 'after', [{ seq: 1 }]);
  await eventually(() => [...clients].filter(([rid]) => rid !== forgotten).every(([, c]) => keptSeqs(c).seqs.includes(1)), 10_000);
  t.ok([...clients].filter(([rid]) => rid !== forgotten).every(([, c]) => !c.isEnded), 'the others stay open and are served');
});

t.test('an oversized line is cut on a code point boundary through the api path, keeping its id, entity and level', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const client = await fleet.open('cut');
  await fleet.subscribe('cut', 1, ENTITY);
  for (const pad of [0, 1, 2, 3]) {
    const message = 'x'.repeat(pad) + '😀é中'.repeat(30_000);
    await append(ENTITY, `big${pad}`, [{ message, level: 'warn', entity_id: ENTITY, '@timestamp': '2026-12-05T00:00:00.000Z' }]);
  }
  await eventually(() => receivedLines(client, ENTITY).length === 4);
  for (const line of receivedLines(client, ENTITY)) {
    const message = line.doc.message as string;
    t.equal(line.doc.truncated, true);
    t.notOk(/[\uD800-\uDBFF]$/.test(message), 'never half a surrogate pair at the end');
    t.notOk(message.includes('\uFFFD'), 'no replacement character');
    t.match(line.doc, { _id: line.id, entity_id: ENTITY, level: 'warn', '@timestamp': '2026-12-05T00:00:00.000Z' });
  }
  t.equal(await metricValue(fleet.pods[0]!.metrics, 'sse_device_log_docs_truncated_total'), 4);
  t.ok((await fleet.publisher.xlen(deviceStreamKeys(fleet.prefix, ENTITY).stream)) === 4, 'the window holds the whole lines');
});

t.test('a 500-line positioned batch is split under 100 kB per send; every event names its lines ids and its last cursor', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const append = streamAppender(fleet.publisher, fleet.prefix);
  const client = await fleet.open('split');
  await fleet.subscribe('split', 1, ENTITY);
  const docs = Array.from({ length: 500 }, (_, seq) => ({ seq, message: `${'x'.repeat(990)}"quoted"` }));
  const appended = await append(ENTITY, 'big', docs);
  if (!appended.appended) throw new Error('appended');
  await eventually(() => receivedLines(client, ENTITY).length === 500);
  const lines = receivedLines(client, ENTITY);
  t.same(lines.map((l) => l.doc.seq), range(0, 499), 'every line once, in order');
  t.same(lines.map((l) => l.id), docs.map((_, i) => `big.${i}`), 'each line with its id');
  t.same(lines.map((l) => l.position.offset), range(appended.first.offset, appended.lastOffset), 'offsets follow the lines');
  const bodies = fleet.gateway.sends().filter((s) => (s.body as { event?: { name: string } }).event?.name === 'device-logs');
  t.ok(bodies.length >= 6, `${bodies.length} events`);
  for (const s of bodies) t.ok(Buffer.byteLength(JSON.stringify(s.body)) <= MAX_SEND_BODY_BYTES, 'body within 100 kB');
});
