import t from 'tap';
import { eventually, type SseClient } from '@iotsupport/testkit';
import { MAX_SEND_BODY_BYTES } from '@iotsupport/gateway-client';
import { registryKeys } from '@iotsupport/realtime-state';
import { deviceLogPayloads, sample, startProcessFleet, type ProcessFleet } from './process-fleet.js';

/**
 * Forwarding's must-show, on a real fleet: 3 api processes (`node apps/api/dist/src/main.js`),
 * real Redis and PostgreSQL, the SSE Gateway stand-in, ingest-shaped batches on the log channels.
 * The subtests share one fleet and run in order; the last ones kill and stop pods.
 */
const ENTITIES = ['sensor.e0', 'sensor.e1', 'sensor.e2', 'sensor.e3', 'sensor.e4'];
/** Per-connection queue: small enough that the slow connection overflows it in a few seconds. */
const QUEUE_LIMIT = 50;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const seqs = (client: SseClient, entityId?: string) =>
  deviceLogPayloads(client)
    .filter((p) => entityId === undefined || p.device_entity_id === entityId)
    .flatMap((p) => p.logs.map((l) => l.seq as number));

let fleet: ProcessFleet;

t.before(async () => {
  fleet = await startProcessFleet(t, {
    pods: 3,
    slowDelayMs: 100,
    // A send that times out is retried (at least once: the stand-in may already have delivered it).
    // The stand-in loses nothing, so a timeout here is only a loaded CI machine stalling a fresh pod
    // for 2 s (the default), which would show up as a duplicate in the exactly-once checks.
    env: { GATEWAY_CONNECTION_QUEUE_LIMIT: String(QUEUE_LIMIT), GATEWAY_SEND_TIMEOUT_MS: '10000' },
  });
});

t.test('connections over 3 pods, subscriptions through random pods: every batch exactly once, in order, nothing else', async (t) => {
  const watch = new Map<string, string[]>();
  const clients = new Map<string, SseClient>();
  for (let i = 0; i < 30; i++) {
    const rid = `m${i}`;
    clients.set(rid, await fleet.open(rid));
    const mine = ENTITIES.filter((_, k) => (i + k) % 3 === 0);
    watch.set(rid, mine);
    for (const eid of mine) {
      const answer = await fleet.deviceLogs('subscribe', rid, eid);
      t.equal(answer.status, 200, `${rid} subscribes ${eid}`);
    }
  }
  const owned = await Promise.all(fleet.pods.map(async (p) => sample(await fleet.metrics(p), 'sse_forwarding_owned_connections')));
  t.equal(owned.reduce((a, b) => a + b, 0), 30, `each connection has one owner (per pod: ${owned.join(', ')})`);

  const BATCHES = 30;
  for (let seq = 0; seq < BATCHES; seq++) {
    for (const eid of ENTITIES) await fleet.publishBatch(eid, `${eid}#${seq}`, [{ entity_id: eid, seq, message: `line ${seq}` }]);
    await pause(20); // a steady flow (a burst beyond GATEWAY_CONNECTION_QUEUE_LIMIT is the slow-connection test's)
  }
  await fleet.publishBatch('sensor.e0', 'sensor.e0#7', [{ entity_id: 'sensor.e0', seq: 7, message: 'republished after an ingest crash' }]);
  await fleet.publishBatch('sensor.e5', 'sensor.e5#0', [{ entity_id: 'sensor.e5', seq: 0 }]); // nobody watches it
  for (const eid of ENTITIES) await fleet.publishBatch(eid, `${eid}#end`, [{ entity_id: eid, seq: BATCHES }]);

  for (const [rid, client] of clients) {
    const mine = watch.get(rid)!;
    await eventually(() => mine.every((eid) => seqs(client, eid).at(-1) === BATCHES), 15_000);
    for (const eid of mine) t.same(seqs(client, eid), [...Array(BATCHES + 1).keys()], `${rid} ${eid}: every batch once, in order`);
    t.same([...new Set(deviceLogPayloads(client).map((p) => p.device_entity_id))].sort(), [...mine].sort(), `${rid}: nothing it does not watch`);
  }
  const retries = await Promise.all(fleet.pods.map(async (p) => sample(await fleet.metrics(p), 'sse_gateway_send_retries_total')));
  t.comment(`sends retried per pod: ${retries.join(', ')}`);

  const nudge = await fleet.post(fleet.pods[1]!, true, '/internal/rotation-nudge', 'not json at all', 'text/plain');
  t.same([nudge.status, JSON.parse(nudge.body)], [200, { status: 'ok' }], 'POST /internal/rotation-nudge → 200 {"status":"ok"}, body ignored');
  const onPublic = await fleet.post(fleet.pods[1]!, false, '/internal/rotation-nudge', '{}');
  t.equal(onPublic.status, 404, `never on the public listener (${onPublic.status} ${onPublic.body})`);
  for (const [rid, client] of clients) {
    await eventually(() => client.envelopes().some((e) => e.type === 'rotation-updated'));
    t.equal(client.envelopes().filter((e) => e.type === 'rotation-updated').length, 1, `${rid}: rotation-updated once`);
  }
  const nudges = await Promise.all(fleet.pods.map(async (p) => sample(await fleet.metrics(p), 'sse_rotation_nudge_broadcast_total', { source: 'internal' })));
  t.same(nudges, [1, 1, 1], 'each pod broadcast the nudge once to its own connections');
  for (const [rid, client] of clients) {
    client.close();
    await eventually(async () => (await fleet.redis.exists(registryKeys(fleet.prefix).connection(rid))) === 0);
  }
});

t.test('a 500-line batch of 1 kB lines arrives as several events, each /internal/send body under 100 kB', async (t) => {
  const client = await fleet.open('big');
  t.equal((await fleet.deviceLogs('subscribe', 'big', 'sensor.e5')).status, 200);
  const token = fleet.tokenOf('big');
  const docs = Array.from({ length: 500 }, (_, seq) => ({ entity_id: 'sensor.e5', seq, message: `${'x'.repeat(1000)}` }));
  await fleet.publishBatch('sensor.e5', 'big#1', docs);
  await eventually(() => seqs(client).length === 500);
  t.same(seqs(client), [...Array(500).keys()], 'every line once, in order');
  const sends = fleet.gateway.sends().filter((s) => (s.body as { token?: string }).token === token && (s.body as { event?: unknown }).event);
  t.ok(sends.length >= 5, `${sends.length} events`);
  for (const s of sends) t.ok(Buffer.byteLength(JSON.stringify(s.body)) <= MAX_SEND_BODY_BYTES, 'body ≤ 100 kB');
  client.close();
});

t.test('gateway 404 for one connection: its state is gone everywhere, the others unaffected', async (t) => {
  const keys = registryKeys(fleet.prefix);
  const kept = await fleet.open('kept404');
  const lost = await fleet.open('lost404');
  for (const rid of ['kept404', 'lost404']) await fleet.deviceLogs('subscribe', rid, 'sensor.e1');
  const token = fleet.tokenOf('lost404');
  fleet.lostCallbacks.add(token); // its disconnect callback never reaches us
  lost.close();
  await eventually(() => !fleet.gateway.openTokens().includes(token));
  t.equal(await fleet.redis.exists(keys.connection('lost404')), 1, 'our state outlived the stream');

  await fleet.publishBatch('sensor.e1', '404#1', [{ seq: 1 }]);
  await eventually(() => seqs(kept).length === 1);
  await eventually(async () => (await fleet.redis.exists(keys.connection('lost404'))) === 0);
  t.pass('the 404 to the first send removed the connection');
  t.equal(await fleet.redis.hget(keys.tokens, token), null, 'its token is gone');
  t.same(await fleet.redis.smembers(keys.watchers('sensor.e1')), ['kept404'], 'it watches nothing any more');
  t.equal(await fleet.redis.zscore(keys.byOwner, 'lost404'), null, 'nobody owns it');
  for (const pod of fleet.pods.filter((p) => p.alive)) {
    const answer = await fleet.deviceLogs('subscribe', 'lost404', 'sensor.e1', pod);
    t.equal(answer.status, 403, `${pod.id} refuses a subscribe for it`);
  }
  await fleet.publishBatch('sensor.e1', '404#2', [{ seq: 2 }]);
  await eventually(() => seqs(kept).length === 2);
  t.same(seqs(kept), [1, 2], 'the other connection is unaffected');
  kept.close();
});

t.test('a slow connection: bounded memory, drops counted and marked, the others unaffected', async (t) => {
  const slow = await fleet.open('slow');
  const fast = await fleet.open('fast');
  for (const rid of ['slow', 'fast']) await fleet.deviceLogs('subscribe', rid, 'sensor.e2');
  fleet.slowTokens.add(fleet.tokenOf('slow'));
  // Bounded memory: sse_gateway_send_queue_depth is a pod's events queued for the gateway, all its
  // connections, the one in flight included (gateway-client). Per connection that is at most
  // GATEWAY_CONNECTION_QUEUE_LIMIT waiting + 1 in flight + 1 liveness probe, so a pod owning n of
  // these connections never holds more than n × (QUEUE_LIMIT + 2). Unbounded, the slow one alone
  // would queue ~TOTAL (it drains ~10 events/s while 200 arrive in ~2 s).
  const keys = registryKeys(fleet.prefix);
  const owners = await Promise.all(['slow', 'fast'].map((rid) => fleet.redis.hget(keys.connection(rid), 'owner_pod')));
  const bound = (pod: { id: string }) => owners.filter((o) => o === pod.id).length * (QUEUE_LIMIT + 2);
  const peaks = new Map<string, number>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const pod of fleet.pods.filter((p) => p.alive)) {
        const depth = sample(await fleet.metrics(pod), 'sse_gateway_send_queue_depth');
        peaks.set(pod.id, Math.max(peaks.get(pod.id) ?? 0, depth));
      }
      await pause(25);
    }
  })();
  const TOTAL = 200;
  for (let seq = 0; seq < TOTAL; seq++) {
    await fleet.publishBatch('sensor.e2', `slow#${seq}`, [{ seq }]);
    await pause(10);
  }
  await eventually(() => seqs(fast).length === TOTAL);
  t.same(seqs(fast), [...Array(TOTAL).keys()], 'the fast connection got everything, in order');
  let dropped = 0;
  await eventually(async () => {
    const texts = await Promise.all(fleet.pods.filter((p) => p.alive).map((p) => fleet.metrics(p)));
    dropped = texts.reduce((n, text) => n + sample(text, 'sse_gateway_events_dropped_total', { reason: 'queue_full' }), 0);
    return texts.every((text) => sample(text, 'sse_gateway_send_queue_depth') === 0);
  }, 30_000);
  sampling = false;
  await sampler;
  t.ok(dropped > 0, `drops counted (${dropped})`);
  for (const pod of fleet.pods.filter((p) => p.alive)) {
    t.ok((peaks.get(pod.id) ?? 0) <= bound(pod), `${pod.id}: queue depth peaked at ${peaks.get(pod.id)}, within ${bound(pod)} (GATEWAY_CONNECTION_QUEUE_LIMIT ${QUEUE_LIMIT} per connection)`);
  }
  const slowOwner = fleet.pods.find((p) => p.id === owners[0])!;
  t.ok(peaks.get(slowOwner.id)! >= QUEUE_LIMIT, `the slow connection's pod was sampled with its queue full (peak ${peaks.get(slowOwner.id)})`);
  await fleet.publishBatch('sensor.e2', `slow#${TOTAL}`, [{ seq: TOTAL }]);
  await eventually(() => seqs(slow).includes(TOTAL), 10_000);
  const got = deviceLogPayloads(slow);
  const marked = got.reduce((n, p) => n + (p.dropped ?? 0), 0);
  t.same(seqs(slow), [...seqs(slow)].sort((a, b) => a - b), 'what it got is in order');
  t.equal(got.length + marked, TOTAL + 1, `received ${got.length} + marked dropped ${marked} = every batch`);
  t.equal(marked, dropped, 'every drop was reported to the browser');
  slow.close();
  fast.close();
});

t.test('kill -9 of one pod during a steady flow: delivery resumes, no duplicates, the gap in metrics', async (t) => {
  const clients: SseClient[] = [];
  for (let i = 0; i < 15; i++) {
    clients.push(await fleet.open(`k${i}`));
    await fleet.deviceLogs('subscribe', `k${i}`, 'sensor.e3');
  }
  const owners = new Map<string, string>();
  for (let i = 0; i < 15; i++) owners.set(`k${i}`, (await fleet.redis.hget(registryKeys(fleet.prefix).connection(`k${i}`), 'owner_pod')) ?? '');
  const counts = fleet.pods.map((p) => [...owners.values()].filter((o) => o === p.id).length);
  const victim = fleet.pods[counts.indexOf(Math.max(...counts))]!;
  const victims = [...owners].filter(([, o]) => o === victim.id).map(([rid]) => Number(rid.slice(1)));

  let seq = 0;
  const publishedAt: number[] = [];
  const flow = setInterval(() => {
    publishedAt[seq] = Date.now();
    void fleet.publishBatch('sensor.e3', `k#${seq}`, [{ seq: seq++ }]);
  }, 20);
  t.teardown(() => clearInterval(flow));
  await eventually(() => seq > 100);
  const killedAt = Date.now();
  victim.child.kill('SIGKILL');
  await victim.exited;
  // Must-show: delivery to the dead pod's connections resumes. Design bound 5 s (lease
  // OWNERSHIP_LEASE_SECONDS=3, then takeover); the wait allows 15 s for a loaded CI machine; the
  // measured gap is reported below, not asserted.
  const victimClients = victims.map((i) => clients[i]!);
  const resumed = (c: SseClient) => seqs(c).some((s) => publishedAt[s]! > killedAt);
  await eventually(() => victimClients.every(resumed), 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; not resumed: ${JSON.stringify(victims.filter((i) => !resumed(clients[i]!)).map((i) => `k${i}`))}`);
  });
  clearInterval(flow);
  const last = seq - 1;
  await eventually(() => clients.every((c) => seqs(c).includes(last)), 15_000).catch((err: Error) => {
    const late = clients.map((c, i) => [`k${i}`, seqs(c).at(-1)]).filter(([, s]) => s !== last);
    throw new Error(`${err.message}; last seq ${last}; behind: ${JSON.stringify(late)}`);
  });

  let worstGap = 0;
  for (const [i, client] of clients.entries()) {
    const got = seqs(client);
    t.same(got, [...new Set(got)].sort((a, b) => a - b), `k${i}: in order, no duplicates`);
    if (!victims.includes(i)) {
      t.equal(got.length, got.at(-1)! - got[0]! + 1, `k${i} (a live pod's): nothing missing`);
      continue;
    }
    const firstAfter = got.find((s) => publishedAt[s]! > killedAt);
    const lastBefore = [...got].reverse().find((s) => publishedAt[s]! <= killedAt);
    if (firstAfter !== undefined) worstGap = Math.max(worstGap, publishedAt[firstAfter]! - killedAt);
    t.ok(lastBefore !== undefined && firstAfter !== undefined, `k${i} (the dead pod's): delivery resumed`);
  }
  t.comment(`kill -9 of ${victim.id} (${victims.length} connections): first batch delivered again ${worstGap} ms after the kill (design bound 5 s; OWNERSHIP_LEASE_SECONDS=3; reported, not asserted)`);
  const survivors = fleet.pods.filter((p) => p.alive);
  const texts = await Promise.all(survivors.map((p) => fleet.metrics(p)));
  t.equal(texts.reduce((n, x) => n + sample(x, 'sse_ownership_takeovers_total', { action: 'adopt' }), 0), victims.length, 'every connection of the dead pod taken over once');
  const gapCount = texts.reduce((n, x) => n + sample(x, 'sse_ownership_takeover_gap_seconds_count'), 0);
  const gapSum = texts.reduce((n, x) => n + sample(x, 'sse_ownership_takeover_gap_seconds_sum'), 0);
  t.ok(gapCount >= 1, `the gap is in the metrics (sse_ownership_takeover_gap_seconds: ${gapCount} take-over(s), ${gapSum.toFixed(2)} s)`);
  for (const c of clients) c.close();
});

t.test('SIGTERM: the pod sends what is queued, hands its connections over, exits 0', async (t) => {
  const replacement = await fleet.startPod('pod-new');
  const clients: SseClient[] = [];
  for (let i = 0; i < 10; i++) {
    clients.push(await fleet.open(`s${i}`));
    await fleet.deviceLogs('subscribe', `s${i}`, 'sensor.e4');
  }
  const victim = fleet.pods.filter((p) => p.alive && p !== replacement)[0]!;
  let seq = 0;
  const flow = setInterval(() => void fleet.publishBatch('sensor.e4', `s#${seq}`, [{ seq: seq++ }]), 20);
  t.teardown(() => clearInterval(flow));
  await eventually(() => seq > 50);
  victim.child.kill('SIGTERM');
  const exit = await victim.exited;
  t.same(exit, { code: 0, signal: null }, 'exit 0');
  const stoppedAt = seq;
  await eventually(() => seq > stoppedAt + 50);
  clearInterval(flow);
  const last = seq - 1;
  await eventually(() => clients.every((c) => seqs(c).includes(last)), 15_000);
  for (const [i, client] of clients.entries()) {
    const got = seqs(client);
    t.same(got, [...new Set(got)].sort((a, b) => a - b), `s${i}: in order, no duplicates`);
  }
  t.ok(victim.log.some((l) => l.includes('send what is queued, release owned connections')), 'the forwarding step ran');
});
