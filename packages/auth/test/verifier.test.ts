import t from 'tap';
import { startOidcIssuer, eventually, type IssuerKeyAlg, type OidcIssuer } from '@iotsupport/testkit';
import { accessTokenFromHeaders, createAccessTokenVerifier, TokenVerificationError, type AccessTokenVerifierOptions } from '../src/index.js';
import { startJwksGate } from './jwks-gate.js';

async function issuerFor(t: { teardown(fn: () => unknown): void }, alg?: IssuerKeyAlg): Promise<OidcIssuer> {
  const issuer = await startOidcIssuer(alg ? { alg } : {});
  t.teardown(() => issuer.close());
  return issuer;
}

function verifierFor(issuer: OidcIssuer, over: Partial<AccessTokenVerifierOptions> = {}) {
  return createAccessTokenVerifier({ issuerUrl: issuer.url, audience: issuer.audience, clockSkewSeconds: 30, ...over });
}

async function refusal(promise: Promise<unknown>): Promise<{ reason: string; code: string; status: number }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TokenVerificationError) return { reason: err.reason, code: err.code, status: err.status };
    throw err;
  }
  throw new Error('token was accepted');
}

t.test('a valid token yields sub, exp and azp; keys come from the discovery document, cached', async (t) => {
  const issuer = await issuerFor(t);
  const verifier = verifierFor(issuer);
  const token = issuer.token({ sub: 'alice', azp: 'iotdevice-m1-abcd1234' });
  const verified = await verifier.verifyAccessToken(token);
  t.equal(verified.sub, 'alice');
  t.equal(verified.azp, 'iotdevice-m1-abcd1234');
  t.ok(verified.exp > Date.now() / 1000);
  t.equal(verified.iss, issuer.url);
  for (let i = 0; i < 5; i++) await verifier.verifyAccessToken(issuer.token({ sub: `u${i}` }));
  t.same(issuer.requests, { discovery: 1, jwks: 1 }, 'one discovery, one JWKS fetch for six tokens');
});

t.test('concurrent first tokens with a new kid share one lookup instead of being rate-limited', async (t) => {
  const issuer = await issuerFor(t);
  const verifier = verifierFor(issuer, { unknownKidCooldownMs: 60_000 });
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => verifier.verifyAccessToken(issuer.token({ sub: `u${i}` }))));
  t.same(results.map((r) => r.sub), Array.from({ length: 20 }, (_, i) => `u${i}`));
  t.equal(issuer.requests.jwks, 1);
});

t.test('OIDC_JWKS_URL skips discovery', async (t) => {
  const issuer = await issuerFor(t);
  const verifier = verifierFor(issuer, { jwksUrl: issuer.jwksUrl });
  t.equal((await verifier.verifyAccessToken(issuer.token())).sub, 'alice');
  t.equal(issuer.requests.discovery, 0);
});

for (const alg of ['PS256', 'ES256', 'EdDSA'] as const) {
  t.test(`${alg} keys are accepted`, async (t) => {
    const issuer = await issuerFor(t, alg);
    t.equal((await verifierFor(issuer).verifyAccessToken(issuer.token({ sub: alg }))).sub, alg);
  });
}

t.test('every kind of bad token is refused with 401 INVALID_TOKEN and says why', async (t) => {
  const issuer = await issuerFor(t);
  const verifier = verifierFor(issuer, { clockSkewSeconds: 0 });
  await verifier.verifyAccessToken(issuer.token()); // keys are cached: refusals below are not fetch failures
  const cases: Array<[string, string, string]> = [
    ['expired', issuer.expiredToken(), 'expired'],
    ['forged signature', issuer.forgedSignatureToken(), 'signature'],
    ['alg none', issuer.algNoneToken(), 'algorithm'],
    ['HS256 signed with the public key', issuer.hs256WithPublicKeyToken(), 'algorithm'],
    ['wrong audience', issuer.wrongAudienceToken(), 'audience'],
    ['wrong issuer', issuer.wrongIssuerToken(), 'issuer'],
    ['no sub', issuer.token({ extra: { sub: undefined } }), 'claims'],
    ['empty sub', issuer.token({ sub: '', extra: { sub: '' } }), 'claims'],
    ['not a JWT', 'not-a-jwt', 'malformed'],
    ['garbage segments', 'a.b.c', 'malformed'],
  ];
  for (const [name, token, reason] of cases) {
    t.same(await refusal(verifier.verifyAccessToken(token)), { reason, code: 'INVALID_TOKEN', status: 401 }, name);
  }
});

t.test('a token not addressed to us (issuer, audience, algorithm) is refused before any key lookup: it costs the issuer nothing', async (t) => {
  const issuer = await issuerFor(t);
  const verifier = verifierFor(issuer); // nothing fetched yet: any key lookup would fetch discovery and JWKS
  const cases: Array<[string, string, string]> = [
    ['another issuer', issuer.wrongIssuerToken(), 'issuer'],
    ['another audience', issuer.wrongAudienceToken(), 'audience'],
    ['audience list without ours', issuer.token({ aud: ['someone-else', 'another-api'] }), 'audience'],
    ['alg none', issuer.algNoneToken(), 'algorithm'],
    ['HS256 signed with the public key', issuer.hs256WithPublicKeyToken(), 'algorithm'],
  ];
  for (const [name, token, reason] of cases) {
    t.same(await refusal(verifier.verifyAccessToken(token)), { reason, code: 'INVALID_TOKEN', status: 401 }, name);
  }
  t.same(issuer.requests, { discovery: 0, jwks: 0 }, 'no discovery and no JWKS fetch for refused tokens');
  const listed = await verifier.verifyAccessToken(issuer.token({ sub: 'erin', aud: ['another-api', issuer.audience] }));
  t.equal(listed.sub, 'erin', 'an aud list that contains ours is accepted');
});

t.test('clock skew: a token expired less than OIDC_CLOCK_SKEW_SECONDS ago is still accepted', async (t) => {
  const issuer = await issuerFor(t);
  const token = issuer.token({ expiresIn: -10 });
  t.equal((await verifierFor(issuer, { clockSkewSeconds: 30 }).verifyAccessToken(token)).sub, 'alice');
  t.equal((await refusal(verifierFor(issuer, { clockSkewSeconds: 5 }).verifyAccessToken(token))).reason, 'expired');
});

t.test('unknown kid is refused; once the issuer publishes the rotated key it works; refetches are rate-limited', async (t) => {
  const issuer = await issuerFor(t);
  const verifier = verifierFor(issuer, { unknownKidCooldownMs: 1500 });
  await verifier.verifyAccessToken(issuer.token());
  const strangers = Array.from({ length: 50 }, () => issuer.unknownKidToken());

  // the issuer starts signing with a new key before it is in the JWKS we fetched
  const rotated = issuer.addKey('RS256', false);
  const early = issuer.token({ sub: 'bob' }, rotated);
  t.same(await refusal(verifier.verifyAccessToken(early)), { reason: 'unknown_key', code: 'INVALID_TOKEN', status: 401 });

  // a burst of tokens with random unknown kids costs the issuer nothing more
  const jwksBefore = issuer.requests.jwks;
  for (const token of strangers) t.equal((await refusal(verifier.verifyAccessToken(token))).reason, 'unknown_key');
  t.equal(issuer.requests.jwks, jwksBefore, 'no JWKS fetch for 50 more unknown kids within the cooldown');

  issuer.publish(rotated);
  const verified = await eventually(() => verifier.verifyAccessToken(early).catch(() => null), 5_000, 50);
  t.equal(verified?.sub, 'bob', 'the rotated key works once published (after the cooldown)');
  t.equal((await verifier.verifyAccessToken(issuer.token({ sub: 'carol' }))).sub, 'carol', 'the old key still works');
});

t.test('tokens with random kids cannot starve a rotated key: every fetched key is cached', async (t) => {
  const issuer = await issuerFor(t);
  const cooldown = 2_000;
  const verifier = verifierFor(issuer, { unknownKidCooldownMs: cooldown });
  await verifier.verifyAccessToken(issuer.token()); // first fetch (counts as an unknown-kid fetch)
  const rotated = issuer.addKey('ES256', true); // published: the next JWKS fetch lists it
  const legit = issuer.token({ sub: 'dave' }, rotated);

  // the attacker sends random-kid tokens until one of them wins the refetch after the cooldown
  const fetchesBefore = issuer.requests.jwks;
  await eventually(async () => {
    t.equal((await refusal(verifier.verifyAccessToken(issuer.unknownKidToken()))).reason, 'unknown_key', 'attacker token refused');
    return issuer.requests.jwks > fetchesBefore;
  }, cooldown + 5_000, 50);
  const fetchesAfterAttack = issuer.requests.jwks;

  // interleaved with more attacker tokens, within the same cooldown: the rotated key was in that fetch
  for (let i = 0; i < 5; i++) {
    t.equal((await refusal(verifier.verifyAccessToken(issuer.unknownKidToken()))).reason, 'unknown_key');
    t.equal((await verifier.verifyAccessToken(legit)).sub, 'dave', 'the rotated key verifies');
  }
  t.equal(issuer.requests.jwks, fetchesAfterAttack, 'known from the fetch the attacker caused: no fetch of its own needed');
});

t.test('an unreachable issuer is 503, not a client error', async (t) => {
  const issuer = await issuerFor(t);
  const token = issuer.token();
  await issuer.close();
  const verifier = verifierFor(issuer, { unknownKidCooldownMs: 60_000 });
  t.same(await refusal(verifier.verifyAccessToken(token)), { reason: 'jwks_unavailable', code: 'SERVICE_UNAVAILABLE', status: 503 });
  // within the refetch cooldown we still do not know the issuer's keys: still 503, not an invalid token
  t.same(await refusal(verifier.verifyAccessToken(token)), { reason: 'jwks_unavailable', code: 'SERVICE_UNAVAILABLE', status: 503 }, 'a second token during the cooldown');
});

t.test('during an issuer outage expired keys serve from their stale copy, and only one verification waits for the issuer', async (t) => {
  const issuer = await issuerFor(t);
  const gate = await startJwksGate(t, issuer.jwksUrl);
  // keyTtlMs 0: every cached key is expired at once, so every verification wants a refresh
  const verifier = verifierFor(issuer, { jwksUrl: gate.url, keyTtlMs: 0, fetchTimeoutMs: 300, unknownKidCooldownMs: 60_000 });
  t.equal((await verifier.verifyAccessToken(issuer.token())).sub, 'alice');

  gate.up = false;
  const before = gate.requests;
  for (let i = 0; i < 5; i++) t.equal((await verifier.verifyAccessToken(issuer.token({ sub: `u${i}` }))).sub, `u${i}`, 'verified with the stale key');
  t.equal(gate.requests - before, 1, 'one JWKS fetch for five verifications during the outage');
});

t.test('after a failed refresh the issuer is asked again once the cooldown is over', async (t) => {
  const issuer = await issuerFor(t);
  const gate = await startJwksGate(t, issuer.jwksUrl);
  const verifier = verifierFor(issuer, { jwksUrl: gate.url, keyTtlMs: 0, fetchTimeoutMs: 300, unknownKidCooldownMs: 300 });
  await verifier.verifyAccessToken(issuer.token());
  gate.up = false;
  t.equal((await verifier.verifyAccessToken(issuer.token())).sub, 'alice', 'the stale key serves the failed refresh');
  const afterFailure = gate.requests;
  gate.up = true;
  await eventually(async () => {
    t.equal((await verifier.verifyAccessToken(issuer.token())).sub, 'alice');
    return gate.requests > afterFailure;
  }, 5_000, 50);
  t.pass('the stale copy is not served forever: the JWKS is fetched again');
});

t.test('token source: Bearer header first, else the cookie; header values may be arrays', async (t) => {
  t.equal(accessTokenFromHeaders({ authorization: 'Bearer abc.def.ghi', cookie: 'access_token=zzz' }, 'access_token'), 'abc.def.ghi');
  t.equal(accessTokenFromHeaders({ authorization: 'bearer   abc.def.ghi' }, 'access_token'), 'abc.def.ghi', 'scheme is case-insensitive');
  t.equal(accessTokenFromHeaders({ cookie: 'other=1; access_token=tok.en.x; x=y' }, 'access_token'), 'tok.en.x');
  t.equal(accessTokenFromHeaders({ cookie: ['a=1', 'sess=tok'] }, 'sess'), 'tok', 'array cookie header');
  t.equal(accessTokenFromHeaders({ authorization: ['Bearer first.t.k', 'Bearer second.t.k'] }, 'access_token'), 'first.t.k');
  t.equal(accessTokenFromHeaders({ authorization: 'Basic dXNlcjpwdw==', cookie: 'access_token=c.o.k' }, 'access_token'), 'c.o.k', 'a non-Bearer header falls back to the cookie');
  t.equal(accessTokenFromHeaders({ cookie: 'other=1' }, 'access_token'), null);
  t.equal(accessTokenFromHeaders({}, 'access_token'), null);
  t.equal(accessTokenFromHeaders({ cookie: 'access_token=' }, 'access_token'), null, 'an empty cookie is no token');
});
