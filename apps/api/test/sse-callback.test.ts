import t from 'tap';
import { eventually, freePort, metricValue, openSse } from '@iotsupport/testkit';
import { CALLBACK_SECRET, startFleet } from './sse-fleet.js';

t.test('callback secret, body errors and request_id rules (OIDC off)', async (t) => {
  const fleet = await startFleet(t, { pods: 1 });
  const [pod] = fleet.pods;
  const ok = fleet.connectBody('tok-1', 'abc');

  t.test('the secret is required and compared exactly', async (t) => {
    for (const secret of [null, '', 'wrong', `${CALLBACK_SECRET}x`, CALLBACK_SECRET.slice(0, -1)]) {
      const res = await fleet.callback(pod!, ok, secret);
      t.equal(res.statusCode, 401, `secret ${JSON.stringify(secret)}`);
      t.same(res.json(), { error: 'Invalid callback secret', code: 'INVALID_CALLBACK_SECRET' });
    }
    const badBodyWrongSecret = await pod!.internalServer.inject({ method: 'POST', url: '/api/sse/callback?secret=no', headers: { 'content-type': 'application/json' }, payload: '{not json' });
    t.equal(badBodyWrongSecret.statusCode, 401, 'the secret is checked before the body is read');
    t.same((await fleet.consistent()).connections, {}, 'nothing recorded');
  });

  t.test('bad bodies are 400 with a code', async (t) => {
    const cases: Array<[string, unknown, string]> = [
      ['unknown action', { action: 'reconnect', token: 't', request: { url: '/e?request_id=a', headers: {} } }, 'INVALID_CALLBACK'],
      ['missing token', { action: 'connect', request: { url: '/e?request_id=a', headers: {} } }, 'INVALID_CALLBACK'],
      ['empty token', { action: 'connect', token: '', request: { url: '/e?request_id=a', headers: {} } }, 'INVALID_CALLBACK'],
      ['missing request', { action: 'connect', token: 't' }, 'INVALID_CALLBACK'],
      ['request without url', { action: 'disconnect', token: 't', request: { headers: {} } }, 'INVALID_CALLBACK'],
      ['headers of the wrong type', { action: 'connect', token: 't', request: { url: '/e?request_id=a', headers: { cookie: 5 } } }, 'INVALID_CALLBACK'],
      ['an array', [1, 2], 'INVALID_CALLBACK'],
    ];
    for (const [name, payload, code] of cases) {
      const res = await fleet.callback(pod!, payload);
      t.equal(res.statusCode, 400, name);
      t.equal(res.json().code, code, name);
    }
    const notJson = await pod!.internalServer.inject({ method: 'POST', url: `/api/sse/callback?secret=${CALLBACK_SECRET}`, headers: { 'content-type': 'application/json' }, payload: '{not json' });
    t.equal(notJson.statusCode, 400);
    t.equal(notJson.json().code, 'INVALID_JSON');
    const text = await pod!.internalServer.inject({ method: 'POST', url: `/api/sse/callback?secret=${CALLBACK_SECRET}`, headers: { 'content-type': 'text/plain' }, payload: 'connect' });
    t.equal(text.statusCode, 400, 'a non-JSON content type is a bad callback');
    t.equal(text.json().code, 'INVALID_CALLBACK');
  });

  t.test('request_id: 1-128 of [A-Za-z0-9_-], the first query value', async (t) => {
    const bad = ['a:b', 'a*', '{rt}', 'a%20b', 'a+b', 'x'.repeat(129), '', 'caf%C3%A9'];
    for (const rid of bad) {
      const res = await fleet.callback(pod!, { action: 'connect', token: `t-${rid}`, request: { url: `/events?request_id=${rid}`, headers: {} } });
      t.equal(res.statusCode, 400, JSON.stringify(rid));
      t.equal(res.json().code, 'INVALID_REQUEST_ID');
    }
    const missing = await fleet.callback(pod!, { action: 'connect', token: 't', request: { url: '/events?other=1', headers: {} } });
    t.equal(missing.json().code, 'INVALID_REQUEST_ID', 'no request_id at all');
    t.same((await fleet.consistent()).connections, {}, 'no rejected connect left state');

    const max = 'A-_z9'.repeat(25) + 'abc';
    t.equal(max.length, 128);
    t.equal((await fleet.callback(pod!, { action: 'connect', token: 'tmax', request: { url: `/events?request_id=${max}`, headers: {} } })).statusCode, 200, '128 characters is fine');
    const first = await fleet.callback(pod!, { action: 'connect', token: 'tfirst', request: { url: '/x/y?z=1&request_id=first&request_id=second', headers: {} } });
    t.equal(first.statusCode, 200);
    const snap = await fleet.consistent();
    t.ok(snap.connections.first, 'the first request_id value is the one used');
    t.notOk(snap.connections.second);
  });

  t.test('OIDC off: the connection is bound to local-user; 200 {}', async (t) => {
    const res = await fleet.callback(pod!, ok);
    t.equal(res.statusCode, 200);
    t.same(res.json(), {});
    const conn = (await fleet.consistent()).connections.abc;
    t.equal(conn?.subject, 'local-user');
    t.equal(conn?.binding_expires_at, '0', 'a local-user binding never expires');
    t.equal(conn?.received_by, pod!.config.POD_ID);
    t.equal(conn?.gateway, fleet.gateway.url);
  });

  t.test('the callback is not on the public listener', async (t) => {
    const res = await pod!.publicServer.inject({ method: 'POST', url: `/api/sse/callback?secret=${CALLBACK_SECRET}`, payload: ok as object });
    t.equal(res.statusCode, 404);
  });
});

t.test('OIDC on: every bad token is a 401 the gateway turns into `rejected`; a rotated key works', async (t) => {
  // a clock skew, to show it does not extend the binding (expired by an hour stays expired)
  const fleet = await startFleet(t, { pods: 2, oidc: true, env: { OIDC_JWKS_REFETCH_COOLDOWN_SECONDS: '0.5', OIDC_CLOCK_SKEW_SECONDS: '30' } });
  const issuer = fleet.issuer!;
  const [a, b] = fleet.pods;
  let n = 0;
  const connectWith = (headers: Record<string, string | string[]>, pod = a!) => fleet.callback(pod, fleet.connectBody(`tok-${++n}`, `r${n}`, headers));

  const bad: Array<[string, Record<string, string | string[]>]> = [
    ['no token', {}],
    ['an empty cookie', { cookie: 'access_token=' }],
    ['another cookie only', { cookie: 'session=abc' }],
    ['expired', { authorization: `Bearer ${issuer.expiredToken()}` }],
    ['forged signature', { authorization: `Bearer ${issuer.forgedSignatureToken()}` }],
    ['alg none', { cookie: `access_token=${issuer.algNoneToken()}` }],
    ['HS256 with the public key', { authorization: `Bearer ${issuer.hs256WithPublicKeyToken()}` }],
    ['wrong audience', { authorization: `Bearer ${issuer.wrongAudienceToken()}` }],
    ['wrong issuer', { authorization: `Bearer ${issuer.wrongIssuerToken()}` }],
    ['unknown kid', { authorization: `Bearer ${issuer.unknownKidToken()}` }],
    ['garbage', { authorization: 'Bearer abc.def.ghi' }],
  ];
  for (const [name, headers] of bad) {
    const res = await connectWith(headers);
    t.equal(res.statusCode, 401, name);
    t.match(res.json(), { code: /^(UNAUTHORIZED|INVALID_TOKEN)$/ }, name);
  }
  t.same((await fleet.consistent()).connections, {}, 'no state for any rejected connect');

  const cookie = await connectWith({ cookie: `other=1; access_token=${issuer.token({ sub: 'alice' })}` });
  t.equal(cookie.statusCode, 200, 'token from the cookie');
  const bobToken = issuer.token({ sub: 'bob' });
  const bearer = await connectWith({ authorization: `Bearer ${bobToken}`, cookie: 'access_token=junk' }, b);
  t.equal(bearer.statusCode, 200, 'Bearer first, a junk cookie ignored');
  const snap = await fleet.consistent();
  t.equal(Object.values(snap.connections).find((c) => c.subject === 'alice')?.received_by, a!.config.POD_ID);
  const bob = Object.values(snap.connections).find((c) => c.subject === 'bob');
  t.equal(bob?.received_by, b!.config.POD_ID);
  const bobExp = (JSON.parse(Buffer.from(bobToken.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number }).exp;
  t.ok(Number(bob?.binding_expires_at) > Date.now(), 'the token expiry is recorded');
  t.equal(bob?.binding_expires_at, String(bobExp * 1000), 'the binding ends at exp, not exp + OIDC_CLOCK_SKEW_SECONDS');
  t.notOk(bob && 'token_exp' in bob, 'the expiry is stored once, as binding_expires_at');

  // rotation: the issuer signs with a new key; after it is published, both pods accept it
  const rotated = issuer.addKey('ES256', true);
  issuer.useKey(rotated);
  for (const pod of [a!, b!]) {
    // within OIDC_JWKS_REFETCH_COOLDOWN_SECONDS of the unknown-kid attempt above it may still be refused
    const res = await eventually(async () => {
      const r = await connectWith({ authorization: `Bearer ${issuer.token({ sub: 'carol' })}` }, pod);
      return r.statusCode === 200 ? r : null;
    }, 5000, 100);
    t.equal(res?.statusCode, 200, `rotated key accepted by ${pod.config.POD_ID}`);
  }

  // through the gateway: a browser without a token gets the in-stream `rejected` event
  const browser = openSse(`${fleet.gateway.url}/events?request_id=nobody`);
  t.teardown(() => browser.close());
  const rejected = await browser.waitFor((m) => m.event === 'rejected');
  t.same(JSON.parse(rejected.data), { status: 401, message: 'Unauthorized' });
  await browser.ended;
  const withCookie = openSse(`${fleet.gateway.url}/events?request_id=browser1`, { headers: { cookie: `access_token=${issuer.token({ sub: 'dave' })}` } });
  t.teardown(() => withCookie.close());
  await withCookie.waitFor((m) => m.event === 'ready');
  t.equal((await fleet.consistent()).connections.browser1?.subject, 'dave', 'a browser with the cookie is bound to its sub');
});

t.test('OIDC on, issuer unreachable: connect is a 503 (not a `rejected` browser), counted as verifier_unavailable', async (t) => {
  const deadJwks = `http://127.0.0.1:${await freePort()}/jwks`;
  const fleet = await startFleet(t, { pods: 1, oidc: true, env: { OIDC_JWKS_URL: deadJwks } });
  const pod = fleet.pods[0]!;
  const res = await fleet.callback(pod, fleet.connectBody('tok-x', 'rx', { authorization: `Bearer ${fleet.issuer!.token({ sub: 'alice' })}` }));
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'SERVICE_UNAVAILABLE');
  const registry = pod.deps.metrics.registry;
  t.equal(await metricValue(registry, 'sse_gateway_connections_total', { action: 'rejected' }), 0, 'not counted as a rejected connect');
  t.equal(await metricValue(registry, 'sse_identity_binding_total', { status: 'verifier_unavailable' }), 1);
  t.same((await fleet.consistent()).connections, {}, 'no state');
});
