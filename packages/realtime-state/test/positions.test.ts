import t from 'tap';
import { OwnershipStore } from '../src/index.js';
import { connectInput, registryForTest } from './setup.js';

const LEASE_MS = 30_000;

t.test('a subscribe records the start of delivery; every removal path drops the positions with the connection', async (t) => {
  const { reg, consistent } = registryForTest(t);
  const first = connectInput('c1');
  await reg.connect(first);
  await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'e1', callerSubject: null, start: { cursor: 'ep:10-5', always: false } });
  t.same(await reg.positionsOf('c1'), { e1: 'ep:10-5' }, 'a new subscription starts where the subscribe said');

  await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'e1', callerSubject: null, start: { cursor: 'ep:11-9', always: false } });
  t.same(await reg.positionsOf('c1'), { e1: 'ep:10-5' }, 'subscribing again without a resume moves nothing');
  await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'e1', callerSubject: null, start: { cursor: 'ep:10-2', always: true } });
  t.same(await reg.positionsOf('c1'), { e1: 'ep:10-2' }, 'a resume (since) sets the start even on an unchanged subscription');

  await reg.subscribe({ requestId: 'c1', deviceId: 2, entityId: 'e2', callerSubject: null, start: { cursor: 'ep2:1-1', always: false } });
  await reg.unsubscribe({ requestId: 'c1', deviceId: 2, callerSubject: null });
  t.same(await reg.positionsOf('c1'), { e1: 'ep:10-2' }, 'unsubscribing an entity drops its position');
  await consistent();

  // A replacement by the same subject keeps the subscriptions, and so where their delivery stands.
  await reg.connect(connectInput('c1'));
  t.same(await reg.positionsOf('c1'), { e1: 'ep:10-2' }, 'kept subscriptions keep their positions');
  await reg.connect(connectInput('c1', { subject: 'mallory' }));
  t.same(await reg.positionsOf('c1'), {}, 'dropped subscriptions drop their positions');

  const other = connectInput('c2');
  await reg.connect(other);
  await reg.subscribe({ requestId: 'c2', deviceId: 1, entityId: 'e1', callerSubject: null, start: { cursor: 'ep:10-5', always: false } });
  await reg.disconnect(other.token);
  t.same(await reg.positionsOf('c2'), {}, 'a disconnect drops them');
  t.same((await consistent()).positions, {}, 'no position is left without its connection');
});

t.test('checkpoints are written with the lease renewal, only for streams the caller still owns and entities still watched', async (t) => {
  const { reg, redis, prefix, consistent } = registryForTest(t);
  const store = new OwnershipStore(redis, prefix);
  const other = new OwnershipStore(redis, prefix);
  const { instance, generation } = await store.registerInstance('pod-a', 'http://gw-a', LEASE_MS);
  const theirs = (await other.registerInstance('pod-b', 'http://gw-a', LEASE_MS)).instance;
  t.ok(generation.length > 0, 'the registry has a generation');

  const mine = connectInput('mine');
  const foreign = connectInput('foreign');
  await reg.connect(mine);
  await reg.connect(foreign);
  for (const rid of ['mine', 'foreign']) await reg.subscribe({ requestId: rid, deviceId: 1, entityId: 'e1', callerSubject: null });
  await store.take(instance, 'pod-a', 'shared', 'http://gw-a', [{ requestId: 'mine' }]);
  await other.take(theirs, 'pod-b', 'shared', 'http://gw-a', [{ requestId: 'foreign' }]);

  const renewal = await store.renew(instance, LEASE_MS, [
    { requestId: 'mine', token: mine.token, entityId: 'e1', cursor: 'ep:1-3' },
    { requestId: 'mine', token: mine.token, entityId: 'unwatched', cursor: 'ep:1-3' },
    { requestId: 'mine', token: 'an-old-stream', entityId: 'e1', cursor: 'ep:1-9' },
    { requestId: 'foreign', token: foreign.token, entityId: 'e1', cursor: 'ep:1-3' },
    { requestId: 'gone', token: 'x', entityId: 'e1', cursor: 'ep:1-3' },
  ]);
  t.same(renewal, { renewed: true, generation, written: 1 }, 'one checkpoint qualified');
  t.same(await reg.positionsOf('mine'), { e1: 'ep:1-3' });
  t.same(await reg.positionsOf('foreign'), {}, "another owner's connection is not written");
  t.same(await reg.positionsOf('gone'), {}, 'a removed connection gets no position back');
  await consistent();

  const taken = await store.take(instance, 'pod-a', 'shared', 'http://gw-a', [{ requestId: 'mine' }]);
  t.same(taken[0]?.positions, { e1: 'ep:1-3' }, 'an owner taking the connection reads where delivery stands');
});

t.test('a renewal tells the registry was lost: its generation is gone or another', async (t) => {
  const { redis, prefix } = registryForTest(t);
  const store = new OwnershipStore(redis, prefix);
  const { instance, generation } = await store.registerInstance('pod-a', 'http://gw-a', LEASE_MS);
  t.equal((await store.renew(instance, LEASE_MS, [])).generation, generation);
  // What FLUSHDB does to this prefix.
  const keys = await redis.keys(`${prefix}:*`);
  await redis.del(...keys);
  t.same(await store.renew(instance, LEASE_MS, []), { renewed: false, generation: '', written: 0 }, 'lease and generation gone');
  const again = await store.registerInstance('pod-a', 'http://gw-a', LEASE_MS);
  t.not(again.generation, generation, 'the new registry has a new generation');
  t.equal((await store.registerInstance('pod-b', 'http://gw-a', LEASE_MS)).generation, again.generation, 'which every pod then shares');
});
