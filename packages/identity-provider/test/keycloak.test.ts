import t from 'tap';
import { createAccessTokenVerifier } from '@iotsupport/auth';
import { startKeycloakStandin, startOidcIssuer, type KeycloakStandin, type OidcIssuer } from '@iotsupport/testkit';
import { IdentityProviderRejectedError, IdentityProviderUnavailableError, KeycloakIdentityProvider, keycloakUrls } from '../src/index.js';

/**
 * The Keycloak adapter against the strict stand-in (real HTTP, Keycloak's paths and bodies): what
 * a device can do with the secret afterwards is what matters, so every step ends with a token request.
 */
let issuer: OidcIssuer;
let keycloak: KeycloakStandin;

t.before(async () => {
  issuer = await startOidcIssuer({ audience: 'iotsupport-api' });
  keycloak = startKeycloakStandin(issuer);
});
t.teardown(() => issuer.close());
t.afterEach(() => keycloak.setFault(undefined));

function provider(overrides: Partial<ConstructorParameters<typeof KeycloakIdentityProvider>[0]> = {}): KeycloakIdentityProvider {
  return new KeycloakIdentityProvider({
    issuerUrl: issuer.url,
    adminClientId: keycloak.adminClientId,
    adminClientSecret: keycloak.adminClientSecret,
    audience: issuer.audience,
    timeoutMs: 500,
    ...overrides,
  });
}

/** The claims of a token, verified the way the api verifies it (issuer's JWKS, iss, aud). */
async function claimsOf(token: string): Promise<Record<string, unknown>> {
  const verifier = createAccessTokenVerifier({ issuerUrl: issuer.url, audience: issuer.audience, clockSkewSeconds: 0 });
  return (await verifier.verifyAccessToken(token)).claims;
}

t.test('URLs derive from the realm issuer', async (t) => {
  t.same(keycloakUrls('https://sso.example/auth/realms/iot'), {
    realm: 'iot',
    tokenUrl: 'https://sso.example/auth/realms/iot/protocol/openid-connect/token',
    adminRealmUrl: 'https://sso.example/auth/admin/realms/iot',
  });
  t.throws(() => keycloakUrls('https://sso.example/oauth2'), /realms/);
});

t.test('a created client is confidential with a service account, and its tokens carry azp and the api audience', async (t) => {
  const idp = provider();
  await idp.upsertDeviceClient('iotdevice-thermo-x-abcd1234', 'first-secret');
  const client = keycloak.clients.get('iotdevice-thermo-x-abcd1234')!;
  t.match(client, { publicClient: false, serviceAccountsEnabled: true, enabled: true });
  const { status, token } = await keycloak.deviceToken('iotdevice-thermo-x-abcd1234', 'first-secret');
  t.equal(status, 200);
  t.match(await claimsOf(token!), { azp: 'iotdevice-thermo-x-abcd1234', aud: issuer.audience, iss: issuer.url });
  t.equal((await keycloak.deviceToken('iotdevice-thermo-x-abcd1234', 'wrong')).status, 401);
  t.equal(await idp.getClientSecret('iotdevice-thermo-x-abcd1234'), 'first-secret');
});

t.test('setting a secret replaces the old one; upsert and delete are idempotent', async (t) => {
  const idp = provider();
  const id = 'iotdevice-thermo-x-set00001';
  await idp.upsertDeviceClient(id, 'old');
  await idp.upsertDeviceClient(id, 'new');
  await idp.upsertDeviceClient(id, 'new');
  t.equal((await keycloak.deviceToken(id, 'new')).status, 200, 'the new secret yields a token');
  t.equal((await keycloak.deviceToken(id, 'old')).status, 401, 'the old one no longer does');
  await idp.upsertDeviceClient(id);
  t.equal((await keycloak.deviceToken(id, 'new')).status, 200, 'an upsert without a secret keeps the secret');
  await idp.deleteDeviceClient(id);
  await idp.deleteDeviceClient(id);
  t.notOk(keycloak.clients.has(id));
  t.equal((await keycloak.deviceToken(id, 'new')).status, 401, 'a deleted client gets no token');
  t.equal(await idp.getClientSecret(id), undefined);
});

t.test('a client made by hand gets the device settings and the audience mapper', async (t) => {
  const id = 'iotdevice-thermo-x-legacy01';
  // As an operator would have made it in the system this replaces: no service account, no mapper.
  const admin = provider();
  const token = (await (await fetch(keycloakUrls(issuer.url).tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: keycloak.adminClientId, client_secret: keycloak.adminClientSecret }).toString(),
  })).json()) as { access_token: string };
  const created = await fetch(`${keycloakUrls(issuer.url).adminRealmUrl}/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: id, secret: 'legacy', serviceAccountsEnabled: false }),
  });
  t.equal(created.status, 201);
  t.match(created.headers.get('location'), /\/admin\/realms\/test\/clients\/[0-9a-f-]{36}$/);
  t.equal((await keycloak.deviceToken(id, 'legacy')).status, 400, 'no service account: no token');
  await admin.upsertDeviceClient(id, 'adopted');
  const { status, token: deviceToken } = await keycloak.deviceToken(id, 'adopted');
  t.equal(status, 200);
  t.match(await claimsOf(deviceToken!), { aud: issuer.audience, azp: id });
});

t.test('outages and refusals are typed errors', async (t) => {
  const idp = provider();
  keycloak.setFault('down');
  await t.rejects(idp.upsertDeviceClient('iotdevice-thermo-x-down0001', 's'), IdentityProviderUnavailableError, 'connection dropped');
  keycloak.setFault('hang');
  await t.rejects(idp.deleteDeviceClient('iotdevice-thermo-x-down0001'), IdentityProviderUnavailableError, 'no answer within the timeout');
  keycloak.setFault(undefined);
  t.notOk(keycloak.clients.has('iotdevice-thermo-x-down0001'), 'nothing was applied');

  await t.rejects(provider({ adminClientSecret: 'wrong' }).upsertDeviceClient('iotdevice-thermo-x-nope0001'), IdentityProviderUnavailableError, 'service account refused');

  // A service account with view-clients only (another realm's stand-in: its own admin client).
  const otherIssuer = await startOidcIssuer();
  t.teardown(() => otherIssuer.close());
  const readOnly = startKeycloakStandin(otherIssuer, { adminRoles: ['view-clients'] });
  const reader = new KeycloakIdentityProvider({ issuerUrl: otherIssuer.url, adminClientId: readOnly.adminClientId, adminClientSecret: readOnly.adminClientSecret, audience: 'x', timeoutMs: 500 });
  t.equal(await reader.getClientSecret('iotdevice-thermo-x-nope0002'), undefined, 'reading is allowed');
  await t.rejects(reader.upsertDeviceClient('iotdevice-thermo-x-nope0002', 's'), IdentityProviderRejectedError, 'without manage-clients: 403, a rejection, not an outage');
});
