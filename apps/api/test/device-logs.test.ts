import t from 'tap';
import { eventually, openSse } from '@iotsupport/testkit';
import { startFleet } from './sse-fleet.js';

const CURSOR = /^[A-Za-z0-9_-]{1,32}:\d+-\d+$/;

t.test('device-log subscriptions with OIDC on: every status and code of the contract', async (t) => {
  // no periodic sweep here: the expired binding must be noticed by a subscribe
  const fleet = await startFleet(t, { pods: 2, oidc: true, env: { REGISTRY_SWEEP_INTERVAL_SECONDS: '3600' } });
  const issuer = fleet.issuer!;
  const [a, b] = fleet.pods;
  const [dev0, dev1] = fleet.devices.entity;
  const alice = { authorization: `Bearer ${issuer.token({ sub: 'alice' })}` };
  const bob = { cookie: `access_token=${issuer.token({ sub: 'bob' })}` };
  t.equal((await fleet.callback(a!, fleet.connectBody('tok-alice', 'c1', alice))).statusCode, 200);

  t.test('401 without a valid caller token, before anything else', async (t) => {
    for (const [name, headers] of [
      ['no token', {}],
      ['expired', { authorization: `Bearer ${issuer.expiredToken('alice')}` }],
      ['forged', { authorization: `Bearer ${issuer.forgedSignatureToken('alice')}` }],
      ['alg none', { cookie: `access_token=${issuer.algNoneToken('alice')}` }],
    ] as Array<[string, Record<string, string>]>) {
      for (const op of ['subscribe', 'unsubscribe'] as const) {
        const res = await fleet.deviceLogs(b!, op, { request_id: 'c1', device_id: dev0 }, headers);
        t.equal(res.statusCode, 401, `${op}: ${name}`);
      }
    }
    const badBody = await fleet.deviceLogs(b!, 'subscribe', { nonsense: true }, {});
    t.equal(badBody.statusCode, 401, 'an anonymous caller gets 401 even with a bad body');
  });

  t.test('400 for every bad body', async (t) => {
    const bodies: Array<[string, unknown]> = [
      ['empty', {}],
      ['missing device_id', { request_id: 'c1' }],
      ['missing request_id', { device_id: dev0 }],
      ['extra field', { request_id: 'c1', device_id: dev0, entity: 'x' }],
      ['device_id as string', { request_id: 'c1', device_id: String(dev0) }],
      ['device_id fractional', { request_id: 'c1', device_id: 1.5 }],
      ['request_id number', { request_id: 5, device_id: dev0 }],
      ['request_id with :', { request_id: 'a:b', device_id: dev0 }],
      ['request_id with *', { request_id: 'a*', device_id: dev0 }],
      ['request_id with {', { request_id: '{rt}', device_id: dev0 }],
      ['request_id with a space', { request_id: 'a b', device_id: dev0 }],
      ['request_id of 129 characters', { request_id: 'x'.repeat(129), device_id: dev0 }],
      ['empty request_id', { request_id: '', device_id: dev0 }],
    ];
    for (const op of ['subscribe', 'unsubscribe'] as const) {
      for (const [name, body] of bodies) {
        const res = await fleet.deviceLogs(b!, op, body, alice);
        t.equal(res.statusCode, 400, `${op}: ${name}`);
        t.equal(res.json().code, 'VALIDATION_FAILED', `${op}: ${name}`);
      }
      const notJson = await b!.publicServer.inject({ method: 'POST', url: `/api/device-logs/${op}`, headers: { ...alice, 'content-type': 'application/json' }, payload: '{"request_id":' });
      t.equal(notJson.statusCode, 400, `${op}: not JSON`);
    }
    t.equal((await fleet.consistent()).subscriptionCount, 0);
  });

  t.test('404 for unknown devices and devices without an entity id', async (t) => {
    for (const op of ['subscribe', 'unsubscribe'] as const) {
      for (const id of [999_999, 0, -1, 2 ** 40]) {
        const res = await fleet.deviceLogs(b!, op, { request_id: 'c1', device_id: id }, alice);
        t.equal(res.statusCode, 404, `${op} device ${id}`);
        t.equal(res.json().code, 'DEVICE_NOT_FOUND');
      }
      const res = await fleet.deviceLogs(b!, op, { request_id: 'c1', device_id: fleet.devices.noEntity }, alice);
      t.equal(res.statusCode, 404);
      t.same(res.json(), { error: 'Device has no entity id', code: 'DEVICE_ENTITY_ID_MISSING' });
    }
  });

  t.test('403 for unknown connections and other subjects', async (t) => {
    const unknown = await fleet.deviceLogs(b!, 'subscribe', { request_id: 'nobody', device_id: dev0 }, alice);
    t.equal(unknown.statusCode, 403);
    t.equal(unknown.json().code, 'NO_IDENTITY_BINDING');
    for (const op of ['subscribe', 'unsubscribe'] as const) {
      const res = await fleet.deviceLogs(b!, op, { request_id: 'c1', device_id: dev0 }, bob);
      t.equal(res.statusCode, 403, `${op} by another subject`);
      t.equal(res.json().code, 'IDENTITY_MISMATCH');
    }
    t.equal((await fleet.consistent()).subscriptionCount, 0, 'nothing changed');
  });

  t.test('subscribe is idempotent; unsubscribe removes exactly that; then 404 SUBSCRIPTION_NOT_FOUND', async (t) => {
    const first = await fleet.deviceLogs(a!, 'subscribe', { request_id: 'c1', device_id: dev0 }, alice);
    t.equal(first.statusCode, 200);
    t.same(first.json(), { status: 'subscribed', device_entity_id: 'sensor.0', cursor: first.json().cursor });
    t.match(first.json().cursor, CURSOR);
    const again = await fleet.deviceLogs(b!, 'subscribe', { request_id: 'c1', device_id: dev0 }, alice);
    t.same(again.json(), { status: 'subscribed', device_entity_id: 'sensor.0', cursor: first.json().cursor }, 'twice is a no-op 200');
    await fleet.deviceLogs(b!, 'subscribe', { request_id: 'c1', device_id: dev1 }, alice);
    let snap = await fleet.consistent();
    t.same(snap.devices.c1, { [dev0!]: 'sensor.0', [dev1!]: 'sensor.1' });
    t.equal(snap.subscriptionCount, 2);

    const un = await fleet.deviceLogs(a!, 'unsubscribe', { request_id: 'c1', device_id: dev0 }, alice);
    t.same(un.json(), { status: 'unsubscribed' });
    const twice = await fleet.deviceLogs(a!, 'unsubscribe', { request_id: 'c1', device_id: dev0 }, alice);
    t.equal(twice.statusCode, 404);
    t.equal(twice.json().code, 'SUBSCRIPTION_NOT_FOUND');
    snap = await fleet.consistent();
    t.same(snap.watchers, { 'sensor.1': ['c1'] });
  });

  t.test("unsubscribe removes what was subscribed even after the device's entity id changed", async (t) => {
    await fleet.devices.repo.update(dev1!, { config: { deviceEntityId: 'sensor.renamed' } });
    const res = await fleet.deviceLogs(b!, 'unsubscribe', { request_id: 'c1', device_id: dev1 }, alice);
    t.equal(res.statusCode, 200);
    const snap = await fleet.consistent();
    t.same(snap.watchers, {}, 'sensor.1 is no longer watched (and sensor.renamed never was)');
    t.equal(snap.subscriptionCount, 0);
  });

  t.test('an expired binding: 403, and the stream is closed at the gateway', async (t) => {
    // 6 s: exp is floored to whole seconds (skew 0), and the token must outlast a first JWKS fetch + connect + subscribe under load
    const shortLived = issuer.token({ sub: 'erin', expiresIn: 6 });
    const browser = openSse(`${fleet.gateway.url}/events?request_id=erin1`, { headers: { cookie: `access_token=${shortLived}` } });
    t.teardown(() => browser.close());
    await browser.waitFor((m) => m.event === 'ready');
    const erin = { authorization: `Bearer ${issuer.token({ sub: 'erin' })}` };
    const before = await fleet.deviceLogs(b!, 'subscribe', { request_id: 'erin1', device_id: dev0 }, erin);
    t.equal(before.statusCode, 200, 'bound while the token is valid');
    const refused = await eventually(async () => {
      const res = await fleet.deviceLogs(b!, 'subscribe', { request_id: 'erin1', device_id: dev1 }, erin);
      return res.statusCode === 403 ? res : null;
    }, 15_000, 200);
    t.equal(refused?.json().code, 'NO_IDENTITY_BINDING', 'the connection is no longer bound (contract code)');
    await browser.ended; // the gateway closed the browser's stream
    const conn = fleet.gateway.connections().find((c) => c.url === '/events?request_id=erin1');
    t.equal(conn?.state, 'closed');
    const snap = await fleet.consistent();
    t.notOk(snap.connections.erin1, 'the connection, its binding and subscriptions are gone');
    t.notOk(snap.watchers['sensor.0']);
    const after = await fleet.deviceLogs(a!, 'subscribe', { request_id: 'erin1', device_id: dev0 }, erin);
    t.equal(after.statusCode, 403, 'still refused afterwards, on any pod');
  });
});

t.test('OIDC off: no caller identity, any bound connection is accepted', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const [pod] = fleet.pods;
  const dev = fleet.devices.entity[2]!;
  t.equal((await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'c9', device_id: dev })).json().code, 'NO_IDENTITY_BINDING');
  await fleet.callback(pod!, fleet.connectBody('tok-9', 'c9'));
  const res = await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'c9', device_id: dev });
  t.same(res.json(), { status: 'subscribed', device_entity_id: 'sensor.2', cursor: res.json().cursor });
  t.match(res.json().cursor, CURSOR, 'and where the device stands');
  const withJunkToken = await fleet.deviceLogs(pod!, 'unsubscribe', { request_id: 'c9', device_id: dev }, { authorization: 'Bearer junk' });
  t.equal(withJunkToken.statusCode, 200, 'tokens are not looked at with OIDC off');
});

t.test('since: a cursor resumes (recovered in the answer); anything else is a typed 400; unsubscribe takes no since', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const [pod] = fleet.pods;
  const dev = fleet.devices.entity[3]!;
  await fleet.callback(pod!, fleet.connectBody('tok-s', 'cs'));
  const plain = (await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'cs', device_id: dev })).json();
  t.notOk('recovered' in plain, 'no since, no recovered');

  const resumed = await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'cs', device_id: dev, since: plain.cursor });
  t.same(resumed.json(), { status: 'subscribed', device_entity_id: 'sensor.3', cursor: plain.cursor, recovered: true }, 'nothing missed since the current position');
  const lost = await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'cs', device_id: dev, since: 'someOtherEpoch:1-5' });
  t.same(lost.json(), { status: 'subscribed', device_entity_id: 'sensor.3', cursor: plain.cursor, recovered: false }, 'another epoch: not recovered');

  for (const since of ['not a cursor', 'ep:12', 'ep:1-x', '']) {
    const res = await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'cs', device_id: dev, since });
    t.equal(res.statusCode, 400, JSON.stringify(since));
    t.equal(res.json().code, since === '' ? 'VALIDATION_FAILED' : 'INVALID_CURSOR');
  }
  const tooLong = await fleet.deviceLogs(pod!, 'subscribe', { request_id: 'cs', device_id: dev, since: `${'a'.repeat(70)}:1-1` });
  t.equal(tooLong.json().code, 'VALIDATION_FAILED', 'longer than any cursor: refused by the schema');
  const unsub = await fleet.deviceLogs(pod!, 'unsubscribe', { request_id: 'cs', device_id: dev, since: plain.cursor });
  t.equal(unsub.json().code, 'VALIDATION_FAILED', 'unsubscribe is unchanged: exactly two fields');
});
