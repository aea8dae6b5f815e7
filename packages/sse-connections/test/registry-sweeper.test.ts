import t from 'tap';
import type { Redis } from 'ioredis';
import { CONN_FIELDS, type ConnectionRegistry } from '@iotsupport/realtime-state';
import { RegistrySweeper, type GatewayControl } from '../src/index.js';
import { connectInput, registryForTest } from './setup.js';

/** Makes the gateway's last confirmation of a connection `agoMs` old (Redis clock), in the hash and the index alike. */
async function backdateLastSeen(redis: Redis, reg: ConnectionRegistry, requestId: string, agoMs: number): Promise<void> {
  const [seconds, micros] = await redis.time();
  const then = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - agoMs;
  await redis.hset(reg.keys.connection(requestId), CONN_FIELDS.lastSeenAt, then);
  await redis.zadd(reg.keys.byLastSeen, then, requestId);
}

/** A gateway as the sweeper sees it: which tokens it holds, whether it answers at all. */
function fakeGateway() {
  const alive = new Set<string>();
  const closed: string[] = [];
  let reachable = true;
  const control: GatewayControl = {
    async close(token) {
      closed.push(token);
      if (!reachable) return 'failed';
      return alive.delete(token) ? 'closed' : 'gone';
    },
    async probe(token) {
      if (!reachable) return 'unreachable';
      return alive.has(token) ? 'alive' : 'gone';
    },
  };
  return { control, alive, closed, setReachable: (r: boolean) => (reachable = r) };
}

t.test('expired bindings are removed and closed at their gateway; a 404 or an unreachable gateway ends unconfirmed connections', async (t) => {
  const { reg, redis, consistent } = registryForTest(t);
  const gw = fakeGateway();
  const expired = connectInput('expired', { bindingExpiresAtMs: Date.now() - 1 });
  const live = connectInput('live');
  const lost = connectInput('lost'); // the browser left during the connect callback: the gateway never had it
  for (const c of [expired, live, lost]) {
    await reg.connect(c);
    await reg.subscribe({ requestId: c.requestId, deviceId: 1, entityId: 'e', callerSubject: null });
  }
  gw.alive.add(expired.token);
  gw.alive.add(live.token);
  const sweeper = new RegistrySweeper({ registry: reg, removals: reg, gateway: gw.control, podId: 'p1', intervalMs: 1000, livenessWindowMs: 0 });

  await new Promise((r) => setTimeout(r, 5)); // last_seen strictly before the cutoff
  const first = await sweeper.sweepOnce();
  t.same(first, { expired: 1, probed: 2, removed: 1 });
  t.same(gw.closed, [expired.token], 'the expired stream is closed at the gateway');
  let snap = await consistent();
  t.same(Object.keys(snap.connections), ['live']);
  t.same(snap.watchers.e, ['live']);

  // the next round's liveness pass belongs to whoever takes the lock after it expired
  await redis.del(reg.keys.sweepLock);
  gw.setReachable(false);
  await new Promise((r) => setTimeout(r, 5));
  t.same(await sweeper.sweepOnce(), { expired: 0, probed: 1, removed: 1 }, 'an unreachable gateway: state nobody can reach goes');
  snap = await consistent();
  t.same(snap.connections, {});
  t.equal(snap.subscriptionCount, 0);
});

t.test('an unreachable answer removes a connection only after the unreachable window, and then tries to close it', async (t) => {
  const { reg, redis, consistent } = registryForTest(t);
  const gw = fakeGateway();
  const c = connectInput('slow');
  await reg.connect(c);
  await reg.subscribe({ requestId: 'slow', deviceId: 1, entityId: 'e', callerSubject: null });
  gw.alive.add(c.token);
  gw.setReachable(false); // e.g. a probe timed out on a loaded gateway: the stream may well be open
  const sweeper = new RegistrySweeper({ registry: reg, removals: reg, gateway: gw.control, podId: 'p1', intervalMs: 1000, livenessWindowMs: 0, unreachableWindowMs: 60_000 });

  await new Promise((r) => setTimeout(r, 5));
  t.same(await sweeper.sweepOnce(), { expired: 0, probed: 1, removed: 0 }, 'probed, unreachable, but confirmed recently: kept');
  t.same(Object.keys((await consistent()).connections), ['slow']);
  t.same(gw.closed, [], 'nothing closed');

  // halfway through the unreachable window: still kept
  await backdateLastSeen(redis, reg, 'slow', 30_000);
  await redis.del(reg.keys.sweepLock);
  t.same(await sweeper.sweepOnce(), { expired: 0, probed: 1, removed: 0 }, 'unreachable within the window: kept');
  t.same(gw.closed, [], 'nothing closed');

  await backdateLastSeen(redis, reg, 'slow', 61_000); // unconfirmed for longer than the unreachable window
  await redis.del(reg.keys.sweepLock);
  t.same(await sweeper.sweepOnce(), { expired: 0, probed: 1, removed: 1 }, 'still unreachable after the window: removed');
  await sweeper.stop(); // waits for the best-effort close
  t.same(gw.closed, [c.token], 'a close was attempted at its gateway (it may still hold the stream)');
  const snap = await consistent();
  t.same(snap.connections, {});
  t.equal(snap.subscriptionCount, 0);
});

t.test('a 404 removes an unconfirmed connection at once, whatever the unreachable window', async (t) => {
  const { reg, consistent } = registryForTest(t);
  const gw = fakeGateway();
  await reg.connect(connectInput('lost'));
  const sweeper = new RegistrySweeper({ registry: reg, removals: reg, gateway: gw.control, podId: 'p1', intervalMs: 1000, livenessWindowMs: 0, unreachableWindowMs: 3_600_000 });
  await new Promise((r) => setTimeout(r, 5));
  t.same(await sweeper.sweepOnce(), { expired: 0, probed: 1, removed: 1 });
  t.same((await consistent()).connections, {});
});

t.test('only one pod runs the liveness pass of a round', async (t) => {
  const { registries } = registryForTest(t, 3);
  const gw = fakeGateway();
  for (let i = 0; i < 10; i++) {
    const c = connectInput(`c${i}`);
    await registries[0]!.connect(c);
    gw.alive.add(c.token);
  }
  await new Promise((r) => setTimeout(r, 5));
  const reports = await Promise.all(
    registries.map((registry, i) => new RegistrySweeper({ registry, removals: registry, gateway: gw.control, podId: `p${i}`, intervalMs: 60_000, livenessWindowMs: 0 }).sweepOnce()),
  );
  t.same(reports.map((r) => r.probed).sort(), [0, 0, 10], 'one pod probed all ten, the others none');
  t.equal(await registries[0]!.activeConnections(), 10, 'live connections are confirmed, not removed');
});

t.test('a gateway that does not answer is probed once per round: a healthy gateway’s lost streams behind it still go', async (t) => {
  const { reg, redis, consistent } = registryForTest(t);
  const probes = new Map<string, number>();
  const control: GatewayControl = {
    async close() {
      return 'failed';
    },
    async probe(_token, gatewayUrl) {
      probes.set(gatewayUrl, (probes.get(gatewayUrl) ?? 0) + 1);
      return gatewayUrl === 'http://gw-hung' ? 'unreachable' : 'gone';
    },
  };
  // 40 streams on a gateway that hangs, older than the one stream a healthy gateway lost.
  for (let i = 0; i < 40; i++) {
    const c = connectInput(`hung${i}`, { gateway: 'http://gw-hung' });
    await reg.connect(c);
    await backdateLastSeen(redis, reg, c.requestId, 120_000 - i);
  }
  const lost = connectInput('lost', { gateway: 'http://gw-ok' });
  await reg.connect(lost);
  await backdateLastSeen(redis, reg, lost.requestId, 90_000);
  const sweeper = new RegistrySweeper({ registry: reg, removals: reg, gateway: control, podId: 'p1', intervalMs: 1000, livenessWindowMs: 60_000, unreachableWindowMs: 240_000, concurrency: 4 });

  t.same(await sweeper.sweepOnce(), { expired: 0, probed: 4 + 1, removed: 1 }, 'one batch of probes to the hung gateway, then none; the lost stream is removed');
  t.equal(probes.get('http://gw-hung'), 4, 'the hung gateway is not asked again this round');
  const snap = await consistent();
  t.equal(Object.keys(snap.connections).length, 40, 'the hung gateway’s streams stay until their unreachable window has passed');
  t.notOk(snap.connections.lost, 'the healthy gateway’s lost stream is gone');
});
