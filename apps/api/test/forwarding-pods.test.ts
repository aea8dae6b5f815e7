import t from 'tap';
import { eventually, type SseClient } from '@iotsupport/testkit';
import { MAX_SEND_BODY_BYTES } from '@iotsupport/gateway-client';
import { logChannelName, publishRotationNudge } from '@iotsupport/contracts';
import { deviceLogs, metricValue, startFleet, type Pod } from './forwarding-pods.js';
import { dedupedByCursor, receivedLines, streamAppender } from './stream-appender.js';

const ENTITIES = ['sensor.a', 'sensor.b', 'sensor.c', 'sensor.d', 'sensor.e'];
const deviceIdOf = (eid: string) => ENTITIES.indexOf(eid) + 1;

/** Per entity, the `seq` of every log line a client received, in arrival order. */
function seqsByEntity(payloads: ReturnType<typeof deviceLogs>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const p of payloads) {
    const list = out.get(p.device_entity_id) ?? [];
    for (const doc of p.logs) list.push(doc.seq as number);
    out.set(p.device_entity_id, list);
  }
  return out;
}

/**
 * Holds the first reconcile re-read (store.take) whose answer `matches`, after Redis answered, until
 * `release()`; `atNextTake` runs when the next re-read begins (the held one is over by then; a later
 * one would heal a resurrection, so look right there).
 */
function holdOneReconcile(pod: Pod, matches: (answer: Awaited<ReturnType<Pod['forwarding']['store']['take']>>) => boolean, atNextTake: () => void) {
  const store = pod.forwarding.store;
  const take = store.take.bind(store);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const state = { held: false, released: false, looked: false };
  store.take = async (...args: Parameters<typeof take>) => {
    if (state.released && !state.looked) {
      state.looked = true;
      atNextTake();
    }
    const answer = await take(...args);
    if (!state.held && matches(answer)) {
      state.held = true;
      await gate;
    }
    return answer;
  };
  return {
    held: () => state.held,
    looked: () => state.looked,
    release: () => {
      state.released = true;
      open();
    },
  };
}

t.test('every connection gets every batch of its entities exactly once, in order, and nothing else', async (t) => {
  const fleet = await startFleet(t, { pods: 3 });
  const watch = new Map<string, string[]>();
  const clients = new Map<string, Awaited<ReturnType<typeof fleet.open>>>();
  for (let i = 0; i < 24; i++) {
    const rid = `r${i}`;
    clients.set(rid, await fleet.open(rid));
    const mine = ENTITIES.filter(() => Math.random() < 0.5);
    if (mine.length === 0) mine.push(ENTITIES[i % ENTITIES.length]!);
    watch.set(rid, mine);
    for (const eid of mine) await fleet.subscribe(rid, deviceIdOf(eid), eid); // through a random pod
  }
  const owned = await Promise.all(fleet.pods.map((p) => metricValue(p.metrics, 'sse_forwarding_owned_connections')));
  t.equal(owned.reduce((a, b) => a + b, 0), 24, `every connection has exactly one owner (per pod: ${owned.join(', ')})`);

  const BATCHES = 40;
  for (let seq = 0; seq < BATCHES; seq++) {
    for (const eid of ENTITIES) await fleet.publishBatch(eid, `${eid}#${seq}`, [{ entity_id: eid, seq, message: `line ${seq}` }]);
    if (seq === 10) await fleet.publishBatch('sensor.a', 'sensor.a#3', [{ entity_id: 'sensor.a', seq: 3, message: 'republished after an ingest crash' }]);
  }
  await fleet.publishBatch('sensor.unwatched', 'x#0', [{ entity_id: 'sensor.unwatched', seq: 0 }]);
  await publishRotationNudge(fleet.publisher, fleet.prefix, 'internal');

  for (const [rid, client] of clients) {
    const expected = watch.get(rid)!;
    // generous: three full api pods share this process (and the machine) with the stand-in
    await eventually(() => deviceLogs(client).length >= expected.length * BATCHES && client.envelopes().some((e) => e.type === 'rotation-updated'), 30_000);
  }
  // A last batch per entity, so anything duplicated or late before it has arrived too.
  for (const eid of ENTITIES) await fleet.publishBatch(eid, `${eid}#end`, [{ entity_id: eid, seq: BATCHES }]);
  for (const [rid, client] of clients) {
    const expected = watch.get(rid)!;
    await eventually(() => deviceLogs(client).length === expected.length * (BATCHES + 1));
    const got = seqsByEntity(deviceLogs(client));
    t.same([...got.keys()].sort(), [...expected].sort(), `${rid}: only the entities it watches`);
    for (const eid of expected) t.same(got.get(eid), [...Array(BATCHES + 1).keys()], `${rid} ${eid}: every batch once, in order`);
    t.equal(client.envelopes().filter((e) => e.type === 'rotation-updated').length, 1, `${rid}: one rotation-updated`);
    t.same(client.envelopes().find((e) => e.type === 'rotation-updated')?.payload, {});
  }
  const duplicates = await Promise.all(fleet.pods.map((p) => metricValue(p.metrics, 'sse_forwarding_batches_total', { result: 'duplicate' })));
  t.ok(duplicates.reduce((a, b) => a + b, 0) >= 1, 'the republished batch was recognised and dropped');
});

t.test('unsubscribe stops the entity at once; the pod stops listening after its last watcher', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const client = await fleet.open('u1');
  await fleet.subscribe('u1', 1, 'sensor.a', fleet.pods[0]);
  await fleet.subscribe('u1', 2, 'sensor.b', fleet.pods[1]);
  await fleet.publishBatch('sensor.a', 'a1', [{ seq: 1 }]);
  await fleet.publishBatch('sensor.b', 'b1', [{ seq: 1 }]);
  await eventually(() => deviceLogs(client).length === 2);
  await fleet.unsubscribe('u1', 1, fleet.pods[1]);
  await fleet.publishBatch('sensor.a', 'a2', [{ seq: 2 }]);
  await fleet.publishBatch('sensor.b', 'b2', [{ seq: 2 }]);
  await eventually(() => deviceLogs(client).length === 3);
  t.same(deviceLogs(client).map((p) => `${p.device_entity_id}:${p.logs[0]!.seq}`), ['sensor.a:1', 'sensor.b:1', 'sensor.b:2']);
  const numsub = (await fleet.publisher.pubsub('NUMSUB', logChannelName(fleet.prefix, 'sensor.a'), logChannelName(fleet.prefix, 'sensor.b'))) as [string, number, string, number];
  t.same([numsub[1], numsub[3]], [0, 1], 'no pod listens to an entity nobody it owns watches');
});

t.test('a 500-line batch of 1 kB lines arrives as several events, each body under 100 kB, lines in order', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const client = await fleet.open('big');
  await fleet.subscribe('big', 1, 'sensor.big');
  const docs = Array.from({ length: 500 }, (_, seq) => ({ entity_id: 'sensor.big', seq, message: `${'x'.repeat(990)}"quoted"` }));
  await fleet.publishBatch('sensor.big', 'big#1', docs);
  await eventually(() => deviceLogs(client).reduce((n, p) => n + p.logs.length, 0) === 500);
  const events = deviceLogs(client);
  t.ok(events.length >= 6, `${events.length} events for ~520 kB of escaped lines`);
  t.same(events.flatMap((p) => p.logs.map((l) => l.seq)), [...Array(500).keys()], 'every line once, in order');
  const bodies = fleet.gateway.sends().filter((s) => (s.body as { token?: string }).token && (s.body as { event?: { name: string } }).event?.name === 'device-logs');
  t.equal(bodies.length, events.length);
  for (const s of bodies) t.ok(Buffer.byteLength(JSON.stringify(s.body)) <= MAX_SEND_BODY_BYTES, 'body within 100 kB');
  t.ok(client.raw.split('\n').every((line) => line.length < MAX_SEND_BODY_BYTES), 'each event is one line of data');
});

t.test('a gateway 404 ends the connection everywhere; the others are unaffected', async (t) => {
  const fleet = await startFleet(t, { pods: 3 });
  const lost = await fleet.open('lost');
  const kept = await fleet.open('kept');
  for (const rid of ['lost', 'kept']) await fleet.subscribe(rid, 1, 'sensor.a');
  const token = fleet.gateway.connections().find((c) => c.url.includes('request_id=lost'))!.token;
  for (const pod of fleet.pods) pod.ignoreDisconnectOf.add(token); // the disconnect callback never reaches us
  lost.close();
  await eventually(() => !fleet.gateway.openTokens().includes(token));
  t.ok(await fleet.pods[0]!.registry.getConnection('lost'), 'our state outlived the stream (no callback)');

  await fleet.publishBatch('sensor.a', 'a#1', [{ seq: 1 }]);
  await eventually(() => deviceLogs(kept).length === 1);
  await eventually(async () => (await fleet.pods[0]!.registry.getConnection('lost')) === null);
  const reg = fleet.pods[1]!.registry;
  t.same(await reg.watchers('sensor.a'), ['kept'], 'gone from the entity → watchers direction');
  t.equal(await reg.requestIdForToken(token), null, 'its token is forgotten');
  t.equal(await fleet.pods[2]!.forwarding.store.ownerOf('lost'), null, 'nobody owns it');
  t.notOk(fleet.pods.some((p) => p.forwarding.owned.get('lost')), 'no pod still holds it');
  await fleet.publishBatch('sensor.a', 'a#2', [{ seq: 2 }]);
  await eventually(() => deviceLogs(kept).length === 2);
  t.same(deviceLogs(kept).map((p) => p.logs[0]!.seq), [1, 2]);
});

t.test('a slow connection: bounded queue, drops counted and marked, the others unaffected', async (t) => {
  const slowTokens = new Set<string>();
  const fleet = await startFleet(t, { pods: 1, slowTokens, slowDelayMs: 300, env: { GATEWAY_CONNECTION_QUEUE_LIMIT: '20' } });
  const slow = await fleet.open('slow');
  const fast = await fleet.open('fast');
  for (const rid of ['slow', 'fast']) await fleet.subscribe(rid, 1, 'sensor.a');
  const slowToken = fleet.gateway.connections().find((c) => c.url.includes('request_id=slow'))!.token;
  slowTokens.add(slowToken);
  const pod = fleet.pods[0]!;

  let maxQueued = 0;
  for (let seq = 0; seq < 60; seq++) {
    await fleet.publishBatch('sensor.a', `a#${seq}`, [{ seq }]);
    maxQueued = Math.max(maxQueued, pod.forwarding.gateway.queueLength(slowToken));
    await new Promise((r) => setTimeout(r, 10)); // a steady flow the fast connection keeps up with
  }
  await eventually(() => deviceLogs(fast).length === 60);
  t.same(deviceLogs(fast).map((p) => p.logs[0]!.seq), [...Array(60).keys()], 'the fast connection got everything, in order');
  t.ok(maxQueued <= 20, `the slow connection's queue stayed bounded (max ${maxQueued} waiting)`);
  const dropped = await metricValue(pod.metrics, 'sse_gateway_events_dropped_total', { reason: 'queue_full' });
  t.ok(dropped > 0, `drops counted (${dropped})`);

  await pod.forwarding.gateway.idle();
  await fleet.publishBatch('sensor.a', 'a#60', [{ seq: 60 }]);
  await eventually(() => deviceLogs(slow).some((p) => p.logs[0]!.seq === 60));
  const got = deviceLogs(slow);
  const seqs = got.map((p) => p.logs[0]!.seq as number);
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'what the slow connection got is in order');
  const marked = got.reduce((n, p) => n + (p.dropped ?? 0), 0);
  t.equal(got.length + marked, 61, `received ${got.length} + marked dropped ${marked} = every batch`);
  t.equal(marked, dropped, 'the browser was told about every drop');
  t.equal(await metricValue(pod.metrics, 'sse_device_log_events_sent_total', { status: 'dropped' }), dropped);
});

t.test('a pod that stops renewing its lease: its connections resume on live pods from its checkpoints, nothing lost, repeats only with a seen cursor', async (t) => {
  const fleet = await startFleet(t, { pods: 3 });
  const append = streamAppender(fleet.publisher, fleet.prefix); // through the window, as ingest does
  const clients: SseClient[] = [];
  for (let i = 0; i < 12; i++) {
    clients.push(await fleet.open(`k${i}`));
    await fleet.subscribe(`k${i}`, 1, 'sensor.flow');
  }
  const victim = fleet.pods.reduce((a, b) => (a.forwarding.owned.size >= b.forwarding.owned.size ? a : b));
  const victims = new Set([...victim.forwarding.owned.all()].map((o) => o.requestId));
  let seq = 0;
  let partitionedAt = -1;
  const flow = setInterval(() => void append('sensor.flow', `f#${seq}`, [{ seq: seq++, at: Date.now() }]), 20);
  t.teardown(() => clearInterval(flow));
  await eventually(() => seq > 50);
  partitionedAt = seq;
  fleet.partition(victim); // its subscriber still hears batches; its fence must keep it silent
  await eventually(() => seq > partitionedAt + 400, 20_000);
  clearInterval(flow);
  const last = seq - 1;
  await eventually(() => clients.every((c) => receivedLines(c, 'sensor.flow').some((l) => l.doc.seq === last)), 10_000);

  const rawRepeats: string[] = [];
  clients.forEach((c, i) => {
    const rid = `k${i}`;
    const lines = receivedLines(c, 'sensor.flow');
    t.equal(lines.length, deviceLogs(c).reduce((n, p) => n + p.logs.length, 0), `${rid}: every event carries a cursor`);
    const { kept, repeats } = dedupedByCursor(lines);
    // After the client drops repeats by cursor: every line, once, in order, nothing missing.
    t.same(kept.map((l) => l.doc.seq), [...Array(last + 1).keys()], `${rid}: after dropping repeats by cursor, every line once, in order`);
    t.ok(kept.every((l, k) => k === 0 || l.position.offset === kept[k - 1]!.position.offset + 1), `${rid}: offsets without a gap`);
    if (!victims.has(rid)) {
      t.equal(repeats, 0, `${rid} (not the dead pod's): no repeat at all`);
      return;
    }
    if (repeats > 0) rawRepeats.push(`${rid}: ${repeats}`);
    // A repeat is a line already received under the same cursor (position), id and document.
    const seen = new Map<string, (typeof lines)[number]>();
    let unseen = 0;
    for (const line of lines) {
      // epoch and offset name a line (an event's cursor gives only its last line's ms)
      const key = `${line.position.epoch}:${line.position.offset}`;
      const before = seen.get(key);
      if (!before) seen.set(key, line);
      else if (before.id !== line.id || before.doc.seq !== line.doc.seq) unseen += 1;
    }
    t.equal(seen.size, kept.length, `${rid}: every repeat carries a cursor it already had`);
    t.equal(unseen, 0, `${rid}: a repeated cursor is the same line (id and document)`);
  });
  t.comment(`connections of the dead pod: ${victims.size}; raw repeats before dropping by cursor: ${rawRepeats.join(', ') || 'none'}`);
  const live = fleet.pods.filter((p) => p !== victim);
  const taken = (await Promise.all(live.map((p) => metricValue(p.metrics, 'sse_ownership_takeovers_total')))).reduce((a, b) => a + b, 0);
  t.equal(taken, victims.size, 'every connection of the dead pod was taken over once');
  const gapObserved = (await Promise.all(live.map((p) => metricValue(p.metrics, 'sse_ownership_takeover_gap_seconds')))).reduce((a, b) => a + b, 0);
  t.ok(gapObserved >= 1, 'the take-over gap is in the metrics');
});

t.test('SIGTERM path: a draining pod hands its connections over at once, in order, without duplicates', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const clients: SseClient[] = [];
  for (let i = 0; i < 8; i++) {
    clients.push(await fleet.open(`d${i}`));
    await fleet.subscribe(`d${i}`, 1, 'sensor.flow');
  }
  let seq = 0;
  const flow = setInterval(() => void fleet.publishBatch('sensor.flow', `f#${seq}`, [{ seq: seq++ }]), 10);
  t.teardown(() => clearInterval(flow));
  await eventually(() => seq > 30);
  await fleet.pods[0]!.forwarding.stop();
  const stoppedAt = seq;
  await eventually(() => seq > stoppedAt + 100);
  clearInterval(flow);
  const last = seq - 1;
  await eventually(() => clients.every((c) => deviceLogs(c).some((p) => p.logs[0]!.seq === last)));
  for (const [i, c] of clients.entries()) {
    const seqs = deviceLogs(c).map((p) => p.logs[0]!.seq as number);
    t.same(seqs, [...new Set(seqs)].sort((a, b) => a - b), `d${i}: in order, no duplicates`);
  }
  t.equal(fleet.pods[1]!.forwarding.owned.size, 8, 'the live pod owns every connection');
});

t.test('per-pod topology: a dead pod’s connections are closed at its gateway so browsers reconnect', async (t) => {
  const fleet = await startFleet(t, { pods: 2, topology: 'per-pod' });
  const onDead = await fleet.open('p0', 0);
  const onLive = await fleet.open('p1', 1);
  await fleet.subscribe('p0', 1, 'sensor.a', fleet.pods[1]);
  await fleet.subscribe('p1', 1, 'sensor.a', fleet.pods[0]);
  t.equal(await fleet.pods[0]!.forwarding.store.ownerOf('p0'), fleet.pods[0]!.forwarding.lease.instance, 'the pod beside the gateway owns it');
  await fleet.publishBatch('sensor.a', 'a#1', [{ seq: 1 }]);
  await eventually(() => deviceLogs(onDead).length === 1 && deviceLogs(onLive).length === 1);

  fleet.partition(fleet.pods[0]!);
  await onDead.ended;
  t.pass('the stream at the dead pod’s gateway was closed');
  await eventually(async () => (await fleet.pods[1]!.registry.getConnection('p0')) === null);
  await fleet.publishBatch('sensor.a', 'a#2', [{ seq: 2 }]);
  await eventually(() => deviceLogs(onLive).length === 2);
  t.notOk(onLive.isEnded, 'the live pod’s connection is untouched');
  t.equal(await metricValue(fleet.pods[1]!.metrics, 'sse_ownership_takeovers_total', { action: 'close' }), 1);
});

t.test('per-pod topology: a dead pod’s gateway that never answers the close does not hold up the next take-over', async (t) => {
  const fleet = await startFleet(t, { pods: 3, topology: 'per-pod' });
  const streams: SseClient[] = [];
  for (let i = 0; i < 3; i++) streams.push(await fleet.open(`g${i}`, i));
  // Gateway 0 dies with its pod but its address still takes connections and never answers: every
  // close sent there hangs (in production, until each retry's timeout).
  const unanswering = fleet.gateways[0]!.url;
  for (const pod of fleet.pods.slice(1)) {
    const gateway = pod.forwarding.gateway;
    const close = gateway.close.bind(gateway);
    gateway.close = (token, options = {}) => (options.gatewayUrl === unanswering ? new Promise(() => undefined) : close(token, options));
  }
  fleet.partition(fleet.pods[0]!);
  const closesOf = (i: number) => metricValue(fleet.pods[i]!.metrics, 'sse_ownership_takeovers_total', { action: 'close' });
  await eventually(async () => (await closesOf(1)) + (await closesOf(2)) === 1);
  const taker = (await closesOf(1)) === 1 ? 1 : 2;
  const next = 3 - taker;
  t.notOk(streams[0]!.isEnded, 'the close at the unanswering gateway is still pending');

  fleet.partition(fleet.pods[next]!);
  await eventually(() => streams[next]!.isEnded, 10_000);
  t.pass('the next dead pod’s stream was closed at its gateway meanwhile');
  t.equal(await closesOf(taker), 2);
  t.notOk(streams[taker]!.isEnded, 'the live pod’s own connection is untouched');
});

t.test('owners probe their connections: a gateway that lost them (crash, no callbacks) answers 404 and the state goes', async (t) => {
  const fleet = await startFleet(t, { pods: 2, env: { CONNECTION_PROBE_INTERVAL_SECONDS: '1' } });
  for (const rid of ['p1', 'p2', 'p3']) {
    await fleet.open(rid);
    await fleet.subscribe(rid, 1, 'sensor.a');
  }
  await fleet.gateway.crash(); // every stream gone, not one disconnect callback
  await fleet.gateway.restart();
  const reg = fleet.pods[0]!.registry;
  await eventually(async () => (await reg.activeConnections()) === 0, 10_000);
  t.same(await reg.watchers('sensor.a'), [], 'no subscriptions left');
  const probes = await Promise.all(fleet.pods.map((p) => metricValue(p.metrics, 'sse_connection_probes_total', { result: 'gone' })));
  t.equal(probes.reduce((a, b) => a + b, 0), 3, 'each connection was found gone by its owner’s probe');
  t.equal(fleet.pods.reduce((n, p) => n + p.forwarding.owned.size, 0), 0, 'no pod still owns any');
});

t.test('Redis forgets a pod’s lease (failover): live pods take over after a grace, the pod drops everything and comes back, nothing is sent twice', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const clients: SseClient[] = [];
  for (let i = 0; i < 6; i++) {
    clients.push(await fleet.open(`l${i}`));
    await fleet.subscribe(`l${i}`, 1, 'sensor.flow');
  }
  const victim = fleet.pods.find((p) => p.forwarding.owned.size > 0)!;
  const before = victim.forwarding.lease.instance!;
  let seq = 0;
  const flow = setInterval(() => void fleet.publishBatch('sensor.flow', `f#${seq}`, [{ seq: seq++ }]), 20);
  t.teardown(() => clearInterval(flow));
  await eventually(() => seq > 20);
  // Redis believes the lease is long over while the pod believes it holds it (a failover lost its
  // last renewals): live pods take over at once; the victim learns at its next renewal.
  await fleet.publisher.zadd(victim.forwarding.store.keys.pods, 'XX', 1, before);
  await eventually(() => victim.forwarding.lease.instance !== null && victim.forwarding.lease.instance !== before, 5000);
  t.pass(`the stalled pod re-registered (instance ${before} → ${victim.forwarding.lease.instance})`);
  const atLoss = seq;
  await eventually(() => seq > atLoss + 100);
  clearInterval(flow);
  const last = seq - 1;
  await eventually(() => clients.every((c) => deviceLogs(c).some((p) => p.logs[0]!.seq === last)));
  for (const [i, c] of clients.entries()) {
    const seqs = deviceLogs(c).map((p) => p.logs[0]!.seq as number);
    t.same(seqs, [...new Set(seqs)].sort((a, b) => a - b), `l${i}: in order, no duplicates`);
  }
  t.equal(await metricValue(victim.metrics, 'sse_ownership_lease_lost_total'), 1, 'the loss is counted');
  const late = await fleet.open('late');
  await fleet.subscribe('late', 1, 'sensor.flow');
  await fleet.publishBatch('sensor.flow', 'f#late', [{ seq: -1 }]);
  await eventually(() => deviceLogs(late).length === 1);
  t.pass('new connections are served afterwards, whichever pod takes them');
});

t.test('a connection that leaves while its owner reconciles stays gone: the pod stops owning it and stops listening', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const pod = fleet.pods[0]!;
  const leaving = await fleet.open('r1');
  await fleet.subscribe('r1', 1, 'sensor.a');
  const staying = await fleet.open('r2'); // stays: every reconcile re-reads it, which tells when one has finished
  await fleet.subscribe('r2', 2, 'sensor.b');
  t.equal(pod.forwarding.owned.size, 2);

  // Hold a reconcile's re-read after Redis answered (r1 still existed); the browser leaves meanwhile.
  let atNextReconcile: { ownsR1: boolean; watched: string[] } | undefined;
  const hold = holdOneReconcile(pod, (answer) => answer.some((c) => c.requestId === 'r1'), () => {
    atNextReconcile = { ownsR1: pod.forwarding.owned.get('r1') !== undefined, watched: [...pod.forwarding.owned.watchedEntities()] };
  });
  await eventually(() => hold.held(), 5000);
  leaving.close();
  await eventually(async () => (await pod.registry.getConnection('r1')) === null);
  await eventually(() => pod.forwarding.owned.get('r1') === undefined);
  hold.release();
  await eventually(() => hold.looked(), 5000);
  t.equal(atNextReconcile!.ownsR1, false, 'the pod does not own the departed connection again');
  t.same(atNextReconcile!.watched, ['sensor.b'], 'nor listens to what it watched');
  await fleet.publishBatch('sensor.b', 'b#1', [{ seq: 1 }]);
  await eventually(() => deviceLogs(staying).length === 1);
  t.pass('the connection that stayed is served as before');
});

t.test('an unsubscribe while its owner reconciles sticks: the pod does not listen to the entity again', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const pod = fleet.pods[0]!;
  const client = await fleet.open('s1');
  await fleet.subscribe('s1', 1, 'sensor.a');
  await fleet.subscribe('s1', 2, 'sensor.b');

  // Hold a reconcile's re-read after Redis answered (s1 still watched sensor.a); the unsubscribe lands meanwhile.
  let atNextReconcile: string[] | undefined;
  const hold = holdOneReconcile(pod, (answer) => answer.some((c) => c.requestId === 's1' && c.entities.includes('sensor.a')), () => {
    atNextReconcile = [...pod.forwarding.owned.watchedEntities()];
  });
  await eventually(() => hold.held(), 5000);
  await fleet.unsubscribe('s1', 1);
  t.same([...pod.forwarding.owned.watchedEntities()], ['sensor.b'], 'the unsubscribe took effect at once');
  hold.release();
  await eventually(() => hold.looked(), 5000);
  t.same(atNextReconcile, ['sensor.b'], 'the reconcile read from before the unsubscribe did not bring sensor.a back');
  await fleet.publishBatch('sensor.a', 'a#1', [{ seq: 1 }]);
  await fleet.publishBatch('sensor.b', 'b#1', [{ seq: 1 }]);
  await eventually(() => deviceLogs(client).length === 1);
  t.same(deviceLogs(client).map((p) => p.device_entity_id), ['sensor.b'], 'the client gets only what it still watches');
  const numsub = (await fleet.publisher.pubsub('NUMSUB', logChannelName(fleet.prefix, 'sensor.a'))) as [string, number];
  t.equal(numsub[1], 0, 'no pod listens to the unsubscribed entity');
});
