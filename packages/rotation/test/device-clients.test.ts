import t, { type Test } from 'tap';
import { AppError } from '@iotsupport/contracts';
import { DeviceModelRepository, type Device } from '@iotsupport/db';
import { KeycloakIdentityProvider } from '@iotsupport/identity-provider';
import { startKeycloakStandin, startOidcIssuer, type KeycloakStandin } from '@iotsupport/testkit';
import { createSecretBox, deviceClientId, DeviceClients, RotationService } from '../src/index.js';
import { ageAttempt, createFleet, silentLogger, stateOf, type Fleet } from './helpers.js';

/**
 * Devices and their clients at the identity provider (the Keycloak stand-in over real HTTP, real
 * PostgreSQL). What is checked is what a device experiences: which secret yields a token.
 */
interface Setup {
  fleet: Fleet;
  keycloak: KeycloakStandin;
  clients: DeviceClients;
  service: RotationService;
  modelId: number;
  /** Another model, to move a device to. */
  otherModelId: number;
}

async function setup(t: Test): Promise<Setup> {
  const issuer = await startOidcIssuer({ audience: 'iotsupport-api' });
  t.teardown(() => issuer.close());
  const keycloak = startKeycloakStandin(issuer);
  const fleet = await createFleet(t, 0);
  const identityProvider = new KeycloakIdentityProvider({
    issuerUrl: issuer.url,
    adminClientId: keycloak.adminClientId,
    adminClientSecret: keycloak.adminClientSecret,
    audience: issuer.audience,
    timeoutMs: 300,
  });
  const secretBox = createSecretBox({ secretKey: 'device-clients-test-key-0123456789', nodeEnv: 'test', logger: silentLogger });
  const clients = new DeviceClients({ db: fleet.db.db, identityProvider, secretBox, logger: silentLogger });
  const service = new RotationService({
    db: fleet.db.db,
    secretBox,
    deviceClients: clients,
    notifier: { notify: async () => {} },
    nudger: { nudge: async () => {} },
    logger: silentLogger,
    timeoutSeconds: 300,
    criticalThresholdDays: 7,
  });
  const models = new DeviceModelRepository(fleet.db.db);
  const modelId = (await fleet.db.db.selectFrom('device_models').select('id').where('code', '=', fleet.modelCode).executeTakeFirstOrThrow()).id;
  const otherModelId = (await models.create({ code: 'thermo-y', name: 'Thermostat Y' })).id;
  return { fleet, keycloak, clients, service, modelId, otherModelId };
}

const idOf = (d: Device) => deviceClientId(d.device_model_code, d.key);

async function tokenStatus(s: Setup, device: Device, secret: string): Promise<number> {
  return (await s.keycloak.deviceToken(idOf(device), secret)).status;
}

t.test('create, model change and delete keep the identity provider in step', async (t) => {
  const s = await setup(t);
  const device = await s.clients.create({ key: 'sync0001', device_model_id: s.modelId });
  t.ok(s.keycloak.clients.get('iotdevice-thermo-x-sync0001')?.serviceAccountsEnabled, 'created with the device');

  const secret = await s.service.provision(await s.clients.getById(device.id));
  t.equal(await tokenStatus(s, device, secret.client_secret), 200, 'the first secret is the one the identity provider accepts');

  const moved = await s.clients.update(device.id, { device_model_id: s.otherModelId });
  t.notOk(s.keycloak.clients.has('iotdevice-thermo-x-sync0001'), 'the old client id is gone');
  t.equal(await tokenStatus(s, moved, secret.client_secret), 200, 'the new client id works with the same secret');
  await s.clients.update(device.id, { config: { deviceName: 'renamed' } });
  t.equal(s.keycloak.clients.size, 1, 'a change that keeps the client id touches nothing');

  await s.clients.delete(device.id);
  t.equal(s.keycloak.clients.size, 0, 'deleted with the device');
  t.same(await s.clients.backlog(), { pending: 0, failing: 0 });
});

t.test('an outage after the commit is repaired by the retry; meanwhile no rotation starts', async (t) => {
  const s = await setup(t);
  const kept = await s.clients.create({ key: 'keep0001', device_model_id: s.modelId });
  const gone = await s.clients.create({ key: 'gone0001', device_model_id: s.modelId });

  s.keycloak.setFault('down');
  const fresh = await s.clients.create({ key: 'new00001', device_model_id: s.modelId });
  await s.clients.delete(gone.id);
  t.equal(fresh.key, 'new00001', 'the database change stands');
  t.same(await s.clients.backlog(), { pending: 2, failing: 2 }, 'both wait in the outbox');
  t.same(await s.clients.applyDue(), { applied: 0, failed: 2 }, 'still down: retried later');

  t.equal((await s.service.triggerFleet('worker')).queued_count, 2);
  t.same([await stateOf(s.fleet.db, kept.id), await stateOf(s.fleet.db, fresh.id)], ['QUEUED', 'QUEUED'], 'queued, but none started while out of step');

  s.keycloak.setFault(undefined);
  t.same(await s.clients.applyDue(), { applied: 2, failed: 0 });
  t.ok(s.keycloak.clients.has('iotdevice-thermo-x-new00001'));
  t.notOk(s.keycloak.clients.has('iotdevice-thermo-x-gone0001'));
  await s.service.tick('worker');
  t.equal((await s.service.status()).counts_by_state.PENDING, 1, 'in step again: the rotation goes on');
});

t.test('provisioning: outside an attempt the current secret, during one a new secret set at the identity provider first', async (t) => {
  const s = await setup(t);
  const device = await s.clients.create({ key: 'prov0001', device_model_id: s.modelId });
  const first = (await s.service.provision(device)).client_secret;
  const again = (await s.service.provision(await s.clients.getById(device.id))).client_secret;
  t.equal(again, first, 'outside an attempt a device cannot rotate its own secret');

  await s.service.rotateDevice(device.id, 'web');
  t.equal(await stateOf(s.fleet.db, device.id), 'PENDING');

  s.keycloak.setFault('hang');
  const refused = await s.service.provision(await s.clients.getById(device.id)).catch((err: unknown) => err);
  t.ok(refused instanceof AppError && refused.code === 'IDENTITY_PROVIDER_UNAVAILABLE' && refused.status === 503, '503 with a typed code');
  s.keycloak.setFault(undefined);
  t.equal(await s.service.store.currentSecret(device.id, createSecretBox({ secretKey: 'device-clients-test-key-0123456789', nodeEnv: 'test', logger: silentLogger })), first, 'nothing changed here');
  t.equal(await tokenStatus(s, device, first), 200, 'the device still authenticates with its secret');

  const second = (await s.service.provision(await s.clients.getById(device.id))).client_secret;
  t.not(second, first);
  t.equal(await tokenStatus(s, device, second), 200, 'the new secret works at once');
  t.equal(await tokenStatus(s, device, first), 401, 'the old one no longer does');

  // The device goes silent: the timeout restores the old secret there too.
  await ageAttempt(s.fleet.db, device.id, 301);
  t.same((await s.service.tick('worker')).expired, [device.id], 'timed out (and, alone in the fleet, retried at once)');
  t.equal(await tokenStatus(s, device, first), 200, 'after the timeout the old secret works again');
  t.equal(await tokenStatus(s, device, second), 401, 'and the new one does not');
  t.same(await s.clients.backlog(), { pending: 0, failing: 0 }, 'the restore and the failed provisioning were both applied by the tick');
});
