import t from 'tap';
import { createDb, DeviceModelRepository, migrateToLatest } from '@iotsupport/db';
import { createTestDatabase, eventually, startKeycloakStandin, startOidcIssuer, uniqueId, uniqueTopicPrefix, type KeycloakStandin, type OidcIssuer } from '@iotsupport/testkit';
import { sample, startProcessFleet, type ApiProcess, type ProcessFleet } from './process-fleet.js';
import { dispatchNotices, startWorkerProcess, type WorkerProcess } from './worker-process.js';

/**
 * Devices as real OIDC clients (issue #12), end to end with OIDC on: api and worker processes,
 * PostgreSQL, Redis, Mosquitto, and the Keycloak stand-in. Simulated devices get every token FROM
 * THE STAND-IN with the secret they hold, exactly as against Keycloak. The subtests run in order.
 */
const SECRET_KEY = 'idp-e2e-secret-key-0123456789abcdef';
const TIMEOUT_SECONDS = 3;
const ADMIN_CLIENT_SECRET = 'idp-e2e-admin-secret';

interface SimDevice {
  id: number;
  key: string;
  clientId: string;
  /** The secret the device holds (it keeps it until a provisioning answers with a new one). */
  secret: string;
  notices: number;
  /** Provisioning answers other than 200, by code. */
  refusals: string[];
  behaviour: (d: SimDevice) => Promise<void>;
}

let issuer: OidcIssuer;
let keycloak: KeycloakStandin;
let fleet: ProcessFleet;
let db: ReturnType<typeof createDb>;
let podEnv: Record<string, string>;
let worker: WorkerProcess;
let modelId: number;
const devices: SimDevice[] = [];
const deviceErrors: string[] = [];

/** An operator's token (task F's admin role claim included, so this test also holds with routes authenticated). */
const operator = () => ({ authorization: `Bearer ${issuer.token({ sub: 'operator', extra: { realm_access: { roles: ['iot-admin'] } } })}` });

async function api(method: string, path: string, body?: unknown, pod: ApiProcess = fleet.randomPod()): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`http://127.0.0.1:${pod.port}${path}`, {
    method,
    headers: { ...operator(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A device call: token from the stand-in with `secret`, then the api. Status 0: no token. */
async function deviceCall(d: SimDevice, path: string, secret = d.secret): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { token } = await keycloak.deviceToken(d.clientId, secret);
  if (!token) return { status: 0, body: undefined };
  const res = await fetch(`http://127.0.0.1:${fleet.randomPod().port}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

const tokenStatus = async (d: SimDevice, secret: string) => (await keycloak.deviceToken(d.clientId, secret)).status;

/** Told to rotate: fetch the new secret (with a token of the old one), then config with a token of the new one. */
const good = async (d: SimDevice) => {
  const provisioning = await deviceCall(d, '/api/iot/provisioning');
  if (provisioning.status !== 200) return void d.refusals.push(provisioning.body?.code ?? String(provisioning.status));
  d.secret = provisioning.body.client_secret;
  const config = await deviceCall(d, '/api/iot/config');
  if (config.status !== 200) deviceErrors.push(`${d.key}: config with the new secret ${config.status}`);
};

t.before(async () => {
  issuer = await startOidcIssuer({ audience: 'iotsupport-api' });
  t.teardown(() => issuer.close());
  keycloak = startKeycloakStandin(issuer, { adminClientId: 'iotsupport-admin', adminClientSecret: ADMIN_CLIENT_SECRET });
  const testDb = await createTestDatabase();
  db = createDb(testDb.url);
  await migrateToLatest(db.db);
  modelId = (await new DeviceModelRepository(db.db).create({ code: 'thermo-x', name: 'Thermostat X' })).id;
  const topicPrefix = uniqueTopicPrefix();
  const common = {
    DATABASE_URL: testDb.url,
    MQTT_TOPIC_PREFIX: topicPrefix,
    SECRET_KEY,
    OIDC_ENABLED: 'true',
    OIDC_ISSUER_URL: issuer.url,
    OIDC_AUDIENCE: issuer.audience,
    IDP_ADMIN_CLIENT_ID: 'iotsupport-admin',
    IDP_ADMIN_CLIENT_SECRET: ADMIN_CLIENT_SECRET,
    IDP_REQUEST_TIMEOUT_MS: '1000',
    ROTATION_CRON: '0 12 1 1 *',
  };
  podEnv = common;
  fleet = await startProcessFleet(t, { pods: 2, devices: 0, env: common });
  worker = await startWorkerProcess(t, {
    ...common,
    POD_ID: uniqueId('idp-worker'),
    REDIS_KEY_PREFIX: fleet.prefix,
    ROTATION_TICK_SECONDS: '1',
    ROTATION_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
    IDP_SYNC_INTERVAL_SECONDS: '1',
  });

  const client = await dispatchNotices(topicPrefix, devices);
  t.teardown(async () => {
    await client.endAsync();
    await db.close();
    await testDb.drop();
  });
});

async function stateOf(d: SimDevice): Promise<string> {
  return (await db.db.selectFrom('devices').select('rotation_state').where('id', '=', d.id).executeTakeFirstOrThrow()).rotation_state;
}

t.test('devices created through the api are clients at the identity provider and bootstrap from its secret', async (t) => {
  for (const key of ['idpdev0a', 'idpdev0b', 'idpdev0c']) {
    const created = await api('POST', '/api/devices', { key, device_model_id: modelId, config: { deviceName: key } });
    t.equal(created.status, 201);
    const clientId = `iotdevice-thermo-x-${key}`;
    const client = keycloak.clients.get(clientId);
    t.ok(client?.serviceAccountsEnabled, `${clientId} exists at the identity provider`);
    // The operator reads the first secret from the identity provider's console, as before.
    devices.push({ id: created.body.id, key, clientId, secret: client!.secret, notices: 0, refusals: [], behaviour: good });
  }
  for (const d of devices) {
    const bootstrap = d.secret;
    const first = await deviceCall(d, '/api/iot/provisioning');
    t.equal(first.status, 200, 'a token from the bootstrap secret reaches provisioning');
    d.secret = first.body.client_secret;
    t.not(d.secret, bootstrap, 'a device without a stored secret gets its first one');
    t.equal(await tokenStatus(d, d.secret), 200);
    t.equal(await tokenStatus(d, bootstrap), 401, 'the bootstrap secret is replaced');
    const again = await deviceCall(d, '/api/iot/provisioning');
    t.equal(again.body.client_secret, d.secret, 'outside an attempt: the same secret, no rotation at will');
  }
});

t.test('a full rotation of 3 devices with tokens from the identity provider', async (t) => {
  const before = devices.map((d) => d.secret);
  t.equal((await api('POST', '/api/rotation/trigger')).body.queued_count, 3);
  await eventually(async () => (await api('GET', '/api/rotation/status')).body.counts_by_state.OK === 3 && devices.every((d) => d.notices === 1), 30_000, 100);
  t.same(deviceErrors, [], 'each device called config with a token of its new secret');
  for (const [i, d] of devices.entries()) {
    t.not(d.secret, before[i], `${d.key} rotated`);
    t.equal(await tokenStatus(d, before[i]!), 401, `${d.key}: the old secret no longer yields a token`);
    t.equal((await deviceCall(d, '/api/iot/config')).status, 200, `${d.key}: the new one does, and the api accepts it`);
  }
});

t.test('a timeout restores the old secret at the identity provider too', async (t) => {
  const a = devices[0]!;
  const old = a.secret;
  let fetched: string | undefined;
  a.behaviour = async (d) => {
    if (fetched) return; // gone silent
    const provisioning = await deviceCall(d, '/api/iot/provisioning');
    fetched = provisioning.body.client_secret; // ... and never confirms it (the device keeps `old`)
  };
  t.same((await api('POST', `/api/devices/${a.id}/rotate`)).body, { status: 'queued' });
  await eventually(() => fetched !== undefined, 10_000);
  t.equal(await tokenStatus(a, fetched!), 200, 'during the attempt the new secret is live');
  t.equal(await tokenStatus(a, old), 401);
  await eventually(async () => (await tokenStatus(a, old)) === 200, (TIMEOUT_SECONDS + 10) * 1000, 200);
  t.pass('after the timeout the old secret works again');
  t.equal(await tokenStatus(a, fetched!), 401, 'and the new one does not');
  t.equal((await deviceCall(a, '/api/iot/config')).status, 200, 'the device keeps working with its old secret');

  a.behaviour = good; // it answers the retry
  await eventually(async () => (await stateOf(a)) === 'OK' && a.secret !== old, 20_000, 200);
  t.equal(await tokenStatus(a, a.secret), 200, 'the retry rotated it');
  t.same(deviceErrors, []);
});

t.test('a crash between the commit and the identity-provider call is repaired by the worker', async (t) => {
  for (const step of ['create', 'delete'] as const) {
    const victim = await fleet.startPod(`victim-${step}`, podEnv).catch(async (err: Error) => {
      const pod = fleet.pods.at(-1)!;
      const ready = await fetch(`http://127.0.0.1:${pod.internalPort}/health/readyz`).then((r) => r.text(), (e: Error) => e.message);
      throw new Error(`${err.message}\nreadyz: ${ready}`);
    });
    const key = 'crash001';
    const clientId = `iotdevice-thermo-x-${key}`;
    keycloak.setFault('hang'); // the api's call after the commit never returns...
    const request = step === 'create'
      ? api('POST', '/api/devices', { key, device_model_id: modelId }, victim)
      : api('DELETE', `/api/devices/${(await db.db.selectFrom('devices').select('id').where('key', '=', key).executeTakeFirstOrThrow()).id}`, undefined, victim);
    request.catch(() => undefined);
    const committed = async () => ((await db.db.selectFrom('devices').select('id').where('key', '=', key).executeTakeFirst()) !== undefined) === (step === 'create');
    await eventually(async () => (await committed()) && keycloak.held > 0, 10_000);
    victim.child.kill('SIGKILL'); // ... and the process dies in it
    await victim.exited;
    keycloak.setFault(undefined);
    await eventually(() => keycloak.clients.has(clientId) === (step === 'create'), 10_000, 100);
    t.pass(`${step}: the identity provider caught up without anyone's help`);
  }
  await eventually(async () => (await db.db.selectFrom('idp_outbox').select('id').execute()).length === 0, 10_000, 100);
  t.pass('the outbox is empty again');
});

t.test('an identity-provider outage during a rotation: 503, every device still authenticates, the rotation waits', async (t) => {
  const c = devices[2]!;
  const old = c.secret;
  keycloak.setFault('down');
  t.same((await api('POST', `/api/devices/${c.id}/rotate`)).body, { status: 'queued' });
  await eventually(() => c.refusals.length > 0, 10_000);
  t.equal(c.refusals[0], 'IDENTITY_PROVIDER_UNAVAILABLE', 'provisioning answers 503 with a typed code');
  for (const d of devices) t.equal((await deviceCall(d, '/api/iot/config')).status, 200, `${d.key} authenticates with the secret it holds`);
  t.equal(c.secret, old);

  // While the identity provider is out of step, the timed-out device is not started again.
  await eventually(async () => (await stateOf(c)) === 'TIMEOUT', (TIMEOUT_SECONDS + 10) * 1000, 200);
  const notices = c.notices;
  const ticks = async () => sample(await (await fetch(`${worker.url}/metrics`)).text(), 'iot_rotation_job_runs_total', { result: 'success' });
  const ticksAtTimeout = await ticks();
  await eventually(async () => (await ticks()) >= ticksAtTimeout + 3, 20_000, 200);
  t.equal(c.notices, notices, 'three ticks later: no new attempt while the identity provider is unreachable');
  t.equal(await stateOf(c), 'TIMEOUT');

  keycloak.setFault(undefined);
  await eventually(async () => (await stateOf(c)) === 'OK' && c.secret !== old, 20_000, 200);
  for (const d of devices) t.equal((await deviceCall(d, '/api/iot/config')).status, 200, `${d.key} authenticates after the outage`);
  t.equal(await tokenStatus(c, old), 401);
  t.same(deviceErrors, []);
});
