import t from 'tap';
import { CONN_FIELDS } from '../src/index.js';
import { connectInput, registryForTest } from './setup.js';

t.test('connect records who the connection is, since when, on which pod and gateway', async (t) => {
  const { reg, consistent } = registryForTest(t);
  const input = connectInput('abc', { subject: 'alice', bindingExpiresAtMs: 4_000_000_030_000 });
  const before = Date.now();
  t.same(await reg.connect(input), { outcome: 'connected', replaced: null, subscriptions: null });
  const conn = await reg.getConnection('abc');
  t.ok(conn);
  t.equal(conn?.token, input.token);
  t.equal(conn?.subject, 'alice');
  t.equal(conn?.url, '/events?request_id=abc');
  t.equal(conn?.receivedBy, 'pod-a');
  t.equal(conn?.gateway, 'http://gw-a');
  t.equal(conn?.bindingExpiresAtMs, 4_000_000_030_000, 'the binding ends when the token expires');
  t.same(Object.keys(conn?.raw ?? {}).sort(), Object.values(CONN_FIELDS).filter((f) => f !== CONN_FIELDS.owner && f !== CONN_FIELDS.ownerPod).sort(), 'every field, each stored once (no owner yet)');
  t.ok((conn?.connectedAtMs ?? 0) >= before - 5_000, 'connected_at is the (Redis) time of the connect');
  t.equal(await reg.requestIdForToken(input.token), 'abc');
  const snap = await consistent();
  t.same(Object.keys(snap.connections), ['abc']);
  t.equal(snap.bindingExpiry.abc, 4_000_000_030_000);
  t.equal(await reg.activeConnections(), 1);
});

t.test('subscribe is idempotent and kept in both directions; many devices per connection, many connections per device', async (t) => {
  const { reg, consistent } = registryForTest(t);
  await reg.connect(connectInput('c1'));
  await reg.connect(connectInput('c2', { subject: 'bob' }));
  t.same(await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'sensor.a', callerSubject: 'alice' }), { ok: true, change: 'added' });
  t.same(await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'sensor.a', callerSubject: 'alice' }), { ok: true, change: 'unchanged' });
  await reg.subscribe({ requestId: 'c1', deviceId: 2, entityId: 'sensor.b', callerSubject: null });
  await reg.subscribe({ requestId: 'c2', deviceId: 1, entityId: 'sensor.a', callerSubject: 'bob' });
  t.same((await reg.watchers('sensor.a')).sort(), ['c1', 'c2']);
  t.same(await reg.watchers('sensor.b'), ['c1']);
  t.same(await reg.subscriptionsOf('c1'), { 1: 'sensor.a', 2: 'sensor.b' });
  t.equal(await reg.activeSubscriptions(), 3);
  await consistent();
});

t.test('binding checks: unknown connection, another subject, expired binding', async (t) => {
  const { reg, consistent } = registryForTest(t);
  t.same(await reg.subscribe({ requestId: 'nobody', deviceId: 1, entityId: 'e', callerSubject: null }), { ok: false, code: 'NO_IDENTITY_BINDING' });
  await reg.connect(connectInput('c1', { subject: 'alice' }));
  t.same(await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'e', callerSubject: 'mallory' }), { ok: false, code: 'IDENTITY_MISMATCH' });
  t.same(await reg.unsubscribe({ requestId: 'c1', deviceId: 1, callerSubject: 'mallory' }), { ok: false, code: 'IDENTITY_MISMATCH' });
  await reg.connect(connectInput('old', { subject: 'alice', bindingExpiresAtMs: Date.now() - 30_000 }));
  t.same(await reg.subscribe({ requestId: 'old', deviceId: 1, entityId: 'e', callerSubject: 'alice' }), { ok: false, code: 'BINDING_EXPIRED' });
  t.same(await reg.unsubscribe({ requestId: 'old', deviceId: 1, callerSubject: 'alice' }), { ok: false, code: 'BINDING_EXPIRED' });
  const snap = await consistent();
  t.equal(snap.subscriptionCount, 0, 'nothing was subscribed by a refused call');
});

t.test('unsubscribe removes what (request_id, device_id) subscribed even after the entity id changed', async (t) => {
  const { reg, consistent } = registryForTest(t);
  await reg.connect(connectInput('c1'));
  await reg.subscribe({ requestId: 'c1', deviceId: 7, entityId: 'old.entity', callerSubject: null });
  // the device's entity id changes in the database; unsubscribe does not even know the new one
  t.same(await reg.unsubscribe({ requestId: 'c1', deviceId: 7, callerSubject: null }), { ok: true, entityId: 'old.entity' });
  t.same(await reg.watchers('old.entity'), []);
  t.same(await reg.unsubscribe({ requestId: 'c1', deviceId: 7, callerSubject: null }), { ok: false, code: 'SUBSCRIPTION_NOT_FOUND' });
  // subscribing again after the change moves the subscription to the new entity
  await reg.subscribe({ requestId: 'c1', deviceId: 7, entityId: 'old.entity', callerSubject: null });
  t.same(await reg.subscribe({ requestId: 'c1', deviceId: 7, entityId: 'new.entity', callerSubject: null }), { ok: true, change: 'moved' });
  t.same(await reg.watchers('old.entity'), []);
  t.same(await reg.watchers('new.entity'), ['c1']);
  t.equal(await reg.activeSubscriptions(), 1, 'a move is not a second subscription');
  await consistent();
});

t.test('two devices of one connection sharing an entity id: the entity stays watched until both are gone', async (t) => {
  const { reg, consistent } = registryForTest(t);
  await reg.connect(connectInput('c1'));
  await reg.subscribe({ requestId: 'c1', deviceId: 1, entityId: 'shared', callerSubject: null });
  await reg.subscribe({ requestId: 'c1', deviceId: 2, entityId: 'shared', callerSubject: null });
  await reg.unsubscribe({ requestId: 'c1', deviceId: 1, callerSubject: null });
  t.same(await reg.watchers('shared'), ['c1'], 'device 2 still watches it');
  await reg.unsubscribe({ requestId: 'c1', deviceId: 2, callerSubject: null });
  t.same(await reg.watchers('shared'), []);
  await consistent();
});

t.test('entity ids with key-like characters stay in their own key', async (t) => {
  const { reg, consistent } = registryForTest(t);
  await reg.connect(connectInput('c1'));
  for (const [i, eid] of ['a:b', '{rt}', 'sp ace', '*', 'x}:conn:c1'].entries()) {
    t.same(await reg.subscribe({ requestId: 'c1', deviceId: i, entityId: eid, callerSubject: null }), { ok: true, change: 'added' });
    t.same(await reg.watchers(eid), ['c1'], `watchers of ${eid}`);
  }
  const snap = await consistent();
  t.equal(Object.keys(snap.watchers).length, 5);
});

t.test('replacement: same subject keeps subscriptions, another subject drops them, old token returned to close', async (t) => {
  const { reg, consistent } = registryForTest(t);
  const first = connectInput('r1', { subject: 'alice', gateway: 'http://gw-a' });
  await reg.connect(first);
  await reg.subscribe({ requestId: 'r1', deviceId: 1, entityId: 'e1', callerSubject: 'alice' });

  const second = connectInput('r1', { subject: 'alice', gateway: 'http://gw-b', receivedBy: 'pod-b' });
  t.same(await reg.connect(second), { outcome: 'replaced', replaced: { token: first.token, gateway: 'http://gw-a' }, subscriptions: 'kept' });
  t.same(await reg.subscriptionsOf('r1'), { 1: 'e1' });
  t.equal(await reg.requestIdForToken(first.token), null, 'the old token no longer maps to the request_id');
  t.equal((await reg.getConnection('r1'))?.gateway, 'http://gw-b');

  const third = connectInput('r1', { subject: 'bob' });
  t.same(await reg.connect(third), { outcome: 'replaced', replaced: { token: second.token, gateway: 'http://gw-b' }, subscriptions: 'dropped' });
  t.same(await reg.subscriptionsOf('r1'), {});
  t.same(await reg.watchers('e1'), []);
  t.equal(await reg.activeSubscriptions(), 0);

  // the gateway's disconnect for a replaced token changes nothing
  t.same(await reg.disconnect(second.token), { removed: false });
  t.equal((await reg.getConnection('r1'))?.token, third.token);
  // nor does a gateway 404 for it
  t.same(await reg.gatewayGone('r1', first.token), { removed: false, subscriptionsDropped: 0 });
  t.equal((await reg.getConnection('r1'))?.subject, 'bob');
  await consistent();
});

t.test('a repeated connect for the same token refreshes without a replacement', async (t) => {
  const { reg, consistent } = registryForTest(t);
  const input = connectInput('r1');
  await reg.connect(input);
  await reg.subscribe({ requestId: 'r1', deviceId: 1, entityId: 'e1', callerSubject: null });
  t.same(await reg.connect(input), { outcome: 'refreshed', replaced: null, subscriptions: null });
  t.same(await reg.subscriptionsOf('r1'), { 1: 'e1' });
  await consistent();
});

t.test('disconnect and gateway 404 remove the connection, its binding and all its subscriptions', async (t) => {
  const { reg, consistent } = registryForTest(t);
  const a = connectInput('a');
  const b = connectInput('b');
  await reg.connect(a);
  await reg.connect(b);
  for (const rid of ['a', 'b']) {
    await reg.subscribe({ requestId: rid, deviceId: 1, entityId: 'e1', callerSubject: null });
    await reg.subscribe({ requestId: rid, deviceId: 2, entityId: 'e2', callerSubject: null });
  }
  t.same(await reg.disconnect(a.token), { removed: true, requestId: 'a', subscriptionsDropped: 2 });
  t.same(await reg.disconnect(a.token), { removed: false }, 'a repeated disconnect is ignored');
  t.same(await reg.watchers('e1'), ['b'], 'the other connection still watches');
  t.same(await reg.gatewayGone('b', b.token), { removed: true, subscriptionsDropped: 2 });
  const snap = await consistent();
  t.same(snap.connections, {});
  t.same(snap.watchers, {});
  t.same(snap.tokens, {});
  t.same(snap.lastSeen, {});
  t.equal(snap.subscriptionCount, 0);
});

t.test('an expired binding is ended exactly once however many pods notice it', async (t) => {
  const { registries, consistent } = registryForTest(t, 3);
  const [a] = registries;
  const input = connectInput('x', { bindingExpiresAtMs: Date.now() - 1 });
  await a!.connect(input);
  await a!.subscribe({ requestId: 'x', deviceId: 1, entityId: 'e', callerSubject: null }).then((r) => t.same(r, { ok: false, code: 'BINDING_EXPIRED' }));
  await a!.connect(connectInput('valid', { bindingExpiresAtMs: Date.now() + 3_600_000 }));
  t.same(await a!.expireBinding('valid'), { expired: false, state: 'valid' });
  const results = await Promise.all(registries.flatMap((r) => [r.expireBinding('x'), r.expireBinding('x')]));
  const winners = results.filter((r) => r.expired);
  t.equal(winners.length, 1, 'one caller closes it');
  t.same(winners[0], { expired: true, token: input.token, gateway: 'http://gw-a' });
  t.same(await a!.expireBinding('x'), { expired: false, state: 'unknown' });
  const snap = await consistent();
  t.same(Object.keys(snap.connections), ['valid']);
});

t.test('sweep-expired removes every expired binding once, leaving live ones', async (t) => {
  const { registries, consistent } = registryForTest(t, 2);
  const [a, b] = registries;
  for (let i = 0; i < 30; i++) {
    await a!.connect(connectInput(`dead${i}`, { bindingExpiresAtMs: Date.now() - 1000 }));
    await a!.connect(connectInput(`live${i}`, { bindingExpiresAtMs: i % 2 ? 0 : Date.now() + 3_600_000 }));
    await a!.subscribe({ requestId: `live${i}`, deviceId: 1, entityId: 'e', callerSubject: null });
  }
  const [ra, rb] = await Promise.all([a!.sweepExpired(7), b!.sweepExpired(100)]);
  const swept = [...ra, ...rb].map((c) => c.requestId).sort();
  t.equal(swept.length, 30, 'all 30 expired connections, none twice');
  t.equal(new Set(swept).size, 30);
  t.ok(swept.every((rid) => rid.startsWith('dead')));
  t.same(await a!.sweepExpired(), []);
  const snap = await consistent();
  t.equal(Object.keys(snap.connections).length, 30);
});

t.test('liveness: mark-seen moves the deadline, drop-unconfirmed removes only unconfirmed current tokens', async (t) => {
  const { reg, redis, consistent } = registryForTest(t);
  const input = connectInput('c');
  await reg.connect(input);
  await reg.subscribe({ requestId: 'c', deviceId: 1, entityId: 'e', callerSubject: null });
  const connectedAt = (await reg.getConnection('c'))!.lastSeenAtMs;
  t.same(await reg.unconfirmedSince(connectedAt), [], 'not unconfirmed before its own connect time');
  t.same(await reg.unconfirmedSince(connectedAt + 1), ['c']);
  t.equal(await reg.markSeen('c', 'another-token'), false, 'a stale token confirms nothing');
  t.equal(await reg.dropUnconfirmed('c', input.token, connectedAt), false, 'confirmed at the cutoff: kept');
  await new Promise((r) => setTimeout(r, 5));
  t.equal(await reg.markSeen('c', input.token), true);
  const seen = Number(await redis.hget(reg.keys.connection('c'), CONN_FIELDS.lastSeenAt));
  t.ok(seen > connectedAt, 'last_seen_at moved');
  t.equal(await reg.dropUnconfirmed('c', input.token, seen), false, 'a confirmation that raced in wins');
  t.equal(await reg.dropUnconfirmed('c', input.token, seen + 1), true);
  const snap = await consistent();
  t.same(snap.connections, {});
  t.equal(snap.subscriptionCount, 0);
});

t.test('invalid request_ids never become keys', async (t) => {
  const { reg } = registryForTest(t);
  for (const bad of ['a:b', 'a*', '{x}', 'a b', 'x'.repeat(129), '']) {
    await t.rejects(reg.connect(connectInput(bad)), TypeError, JSON.stringify(bad));
  }
});
