import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import { OwnershipLostError, OwnershipStore } from '../src/index.js';
import { connectInput, registryForTest } from './setup.js';

const LEASE_MS = 3000;

/** Waits (without renewing) until the instance's lease deadline has passed. */
async function leaseRunOut(store: OwnershipStore, instance: string): Promise<void> {
  await eventually(async () => {
    const [seconds, micros] = (await store.redis.time()) as [number | string, number | string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const lease = (await store.instances()).find((i) => i.instance === instance);
    return lease !== undefined && lease.leaseUntilMs < now;
  }, 5000, 50);
}

function storesFor(t: Parameters<typeof registryForTest>[0], clients = 3) {
  const env = registryForTest(t, clients);
  // Several OwnershipStores on separate connections: separate "processes" as far as Redis can tell.
  const stores = env.registries.map((r) => new OwnershipStore(r.redis, env.prefix));
  return { ...env, stores };
}

t.test('instances get numbers never reused; a lease that ran out is never revived', async (t) => {
  const { stores } = storesFor(t, 2);
  const [a, b] = stores as [OwnershipStore, OwnershipStore];
  const first = await a.registerInstance('pod-a', 'http://gw', 300);
  const second = await b.registerInstance('pod-a', 'http://gw', LEASE_MS);
  t.not(first.instance, second.instance, 'the same POD_ID restarted is a new instance');
  t.equal(await a.renewLease(first.instance, 300), true);
  await leaseRunOut(a, first.instance);
  t.equal(await a.renewLease(first.instance, LEASE_MS), false, 'once run out, renewing fails for good');
  t.same((await b.instances()).map((i) => [i.instance, i.info?.pod]).sort(), [[first.instance, 'pod-a'], [second.instance, 'pod-a']].sort());
});

t.test('exactly one live instance takes a connection; per-pod only the gateway that holds it', async (t) => {
  const { stores, reg } = storesFor(t);
  const [a, b, c] = stores as [OwnershipStore, OwnershipStore, OwnershipStore];
  const ia = (await a.registerInstance('pod-a', 'http://gw-a', LEASE_MS)).instance;
  const ib = (await b.registerInstance('pod-b', 'http://gw-b', LEASE_MS)).instance;
  const input = connectInput('r1', { gateway: 'http://gw-a' });
  await reg.connect(input);
  await reg.subscribe({ requestId: 'r1', deviceId: 1, entityId: 'sensor.x', callerSubject: null });
  await reg.subscribe({ requestId: 'r1', deviceId: 2, entityId: 'sensor.x', callerSubject: null });

  const [taken, lost] = await Promise.all([
    a.take(ia, 'pod-a', 'shared', 'http://gw-a', [{ requestId: 'r1', token: input.token }]),
    b.take(ib, 'pod-b', 'shared', 'http://gw-b', [{ requestId: 'r1', token: input.token }]),
  ]);
  t.equal(taken.length + lost.length, 1, 'two concurrent takes: one winner');
  const winner = taken.length ? ia : ib;
  t.same([...taken, ...lost][0], { requestId: 'r1', token: input.token, gateway: 'http://gw-a', entities: ['sensor.x'], positions: {} });
  t.equal(await c.ownerOf('r1'), winner);
  const conn = await reg.getConnection('r1');
  t.equal(conn?.raw.owner, winner, 'the connection hash says who owns it');

  t.same(await a.take(ia, 'pod-a', 'shared', 'http://gw-a', [{ requestId: 'r1', token: 'another-stream' }]), [], 'pinned to a token it no longer has');
  await reg.connect(connectInput('r2', { gateway: 'http://gw-a' }));
  t.same(await b.take(ib, 'pod-b', 'per-pod', 'http://gw-b', [{ requestId: 'r2' }]), [], 'per-pod: gw-b does not hold r2');
  t.equal((await a.take(ia, 'pod-a', 'per-pod', 'http://gw-a', [{ requestId: 'r2' }])).length, 1, 'per-pod: gw-a does');
});

t.test('when an owner stops renewing, live instances split its connections, each exactly once', async (t) => {
  const { stores, reg } = storesFor(t);
  const [dying, b, c] = stores as [OwnershipStore, OwnershipStore, OwnershipStore];
  const wanted = [];
  for (let i = 0; i < 300; i++) {
    const input = connectInput(`c${i}`);
    await reg.connect(input);
    wanted.push({ requestId: input.requestId, token: input.token });
  }
  const id = (await dying.registerInstance('pod-dying', 'http://gw', 500)).instance;
  const ib = (await b.registerInstance('pod-b', 'http://gw', LEASE_MS)).instance;
  const ic = (await c.registerInstance('pod-c', 'http://gw', LEASE_MS)).instance;
  t.equal((await dying.take(id, 'pod-dying', 'shared', 'http://gw', wanted)).length, 300);
  t.equal((await b.take(ib, 'pod-b', 'shared', 'http://gw', wanted)).length, 0, 'nothing is free while the owner lives');

  await leaseRunOut(dying, id);
  const seen = new Map<string, string>();
  const takeAll = async (store: OwnershipStore, instance: string, pod: string) => {
    for (;;) {
      const taken = await store.takeOverDead(instance, pod, 7);
      if (!taken) return;
      t.equal(taken.deadInstance, id);
      t.equal(taken.deadInfo?.pod, 'pod-dying');
      for (const conn of taken.connections) {
        t.notOk(seen.has(conn.requestId), `${conn.requestId} taken once`);
        seen.set(conn.requestId, instance);
      }
    }
  };
  await Promise.all([takeAll(b, ib, 'pod-b'), takeAll(c, ic, 'pod-c')]);
  t.equal(seen.size, 300, 'every connection found a new owner');
  const byB = [...seen.values()].filter((i) => i === ib).length;
  t.comment(`split between the live instances: ${byB} / ${300 - byB}`);
  t.same((await b.ownedBy(ib)).length, byB);
  t.notOk((await b.instances()).some((i) => i.instance === id), 'the dead instance is forgotten once it owns nothing');
  await t.rejects(dying.take(id, 'pod-dying', 'shared', 'http://gw', wanted), OwnershipLostError, 'a dead instance cannot take anything back');
});

t.test('a released lease is taken over at once; registry removals drop ownership in the same step', async (t) => {
  const { stores, reg, redis, consistent } = storesFor(t, 2);
  const [a, b] = stores as [OwnershipStore, OwnershipStore];
  const ia = (await a.registerInstance('pod-a', 'http://gw', 60_000)).instance;
  const ib = (await b.registerInstance('pod-b', 'http://gw', 60_000)).instance;
  const inputs = ['k1', 'k2', 'k3'].map((rid) => connectInput(rid));
  for (const input of inputs) await reg.connect(input);
  await a.take(ia, 'pod-a', 'shared', 'http://gw', inputs.map((i) => ({ requestId: i.requestId })));

  t.equal(await b.takeOverDead(ib, 'pod-b', 100), null, 'a 60 s lease is far from over');
  t.equal(await a.releaseLease(ia), true);
  const taken = await b.takeOverDead(ib, 'pod-b', 100);
  t.same(taken?.connections.map((c) => c.requestId).sort(), ['k1', 'k2', 'k3']);
  t.equal(taken?.deadLeaseUntilMs, 0);
  t.ok(taken?.deadInfo?.released_at, 'the takers learn it was released (its holder had stopped sending)');

  await reg.disconnect(inputs[0]!.token);
  t.equal(await b.ownerOf('k1'), null, 'disconnect');
  await reg.gatewayGone('k2', inputs[1]!.token);
  t.equal(await b.ownerOf('k2'), null, 'gateway 404');
  const replacement = connectInput('k3');
  await reg.connect(replacement);
  t.equal(await b.ownerOf('k3'), null, 'a replacing stream starts without an owner');
  t.same(await redis.hmget(reg.keys.connection('k3'), 'owner', 'owner_pod'), [null, null]);
  t.equal((await a.take(ia, 'pod-a', 'shared', 'http://gw', [{ requestId: 'k3' }]).catch((e: unknown) => e)) instanceof OwnershipLostError, true);
  t.equal((await b.take(ib, 'pod-b', 'shared', 'http://gw', [{ requestId: 'k3', token: replacement.token }])).length, 1);
  await consistent();
});

t.test('the safety net finds connections nobody took, once they are old enough', async (t) => {
  const { stores, reg } = storesFor(t, 1);
  const [a] = stores as [OwnershipStore];
  const ia = (await a.registerInstance('pod-a', 'http://gw', LEASE_MS)).instance;
  for (let i = 0; i < 5; i++) await reg.connect(connectInput(`n${i}`));
  await a.take(ia, 'pod-a', 'shared', 'http://gw', [{ requestId: 'n0' }]);
  t.same(await a.findUnowned(0, 100, 60_000), { next: 0, requestIds: [] }, 'too young: their receiver is still taking them');
  const all: string[] = [];
  let rank = 0;
  do {
    const page = await a.findUnowned(rank, 2, 0);
    all.push(...page.requestIds);
    rank = page.next;
  } while (rank !== 0);
  t.same(all.sort(), ['n1', 'n2', 'n3', 'n4']);
});
