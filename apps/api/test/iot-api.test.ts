import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import { buildOidcTestApi, buildTestApi } from './helpers.js';
import { call, createDevices, watchNotices, watchNudges } from './rotation-helpers.js';

t.test('OIDC off: device_key authenticates; provisioning then config completes the rotation and starts the next', async (t) => {
  const { publicServer: app, config } = await buildTestApi(t);
  const [a, b] = await createDevices(app, 2);
  const nudges = await watchNudges(t, config);
  const notices = await watchNotices(t, config);

  t.match(await call(app, 'GET', '/api/iot/config'), { status: 401, body: { code: 'UNAUTHORIZED' } });
  t.match(await call(app, 'GET', '/api/iot/config?device_key=nobody00'), { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } });
  t.match(await call(app, 'GET', '/api/iot/config?device_key=NOT-A-KEY'), { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } });
  t.same(await call(app, 'GET', `/api/iot/config?device_key=${a!.key}`), { status: 200, body: { deviceName: 'Device 0', n: 0 } });

  await call(app, 'POST', `/api/devices/${a!.id}/rotate`);
  await call(app, 'POST', `/api/devices/${b!.id}/rotate`);
  await eventually(() => notices.length === 1, 5000);

  // A config fetch without new credentials leaves the rotation pending.
  await call(app, 'GET', `/api/iot/config?device_key=${a!.key}`);
  t.equal((await call(app, 'GET', `/api/devices/${a!.id}`)).body.rotation_state, 'PENDING', 'config alone does not complete it');

  const provisioning = await app.inject({ method: 'GET', url: `/api/iot/provisioning?device_key=${a!.key}` });
  t.equal(provisioning.statusCode, 200);
  t.equal(provisioning.headers['cache-control'], 'no-store');
  const creds = provisioning.json();
  t.same(Object.keys(creds).sort(), ['client_id', 'client_secret', 'device_key']);
  t.equal(creds.device_key, a!.key);
  t.equal(creds.client_id, `iotdevice-thermo-x-${a!.key}`);
  t.match(creds.client_secret, /^[A-Za-z0-9_-]{43}$/);
  const again = (await call(app, 'GET', `/api/iot/provisioning?device_key=${a!.key}`)).body;
  t.not(again.client_secret, creds.client_secret, 'every fetch generates a fresh secret');
  // A HEAD would run the GET handler and hand out (and throw away) a fresh secret: there is none.
  t.equal((await app.inject({ method: 'HEAD', url: `/api/iot/provisioning?device_key=${a!.key}` })).statusCode, 404, 'no HEAD twin of provisioning');
  t.equal((await call(app, 'GET', `/api/devices/${a!.id}`)).body.rotation_state, 'PENDING', 'a HEAD changed nothing');

  const nudgesBefore = nudges.length;
  t.same(await call(app, 'GET', `/api/iot/config?device_key=${a!.key}`), { status: 200, body: { deviceName: 'Device 0', n: 0 } });
  const device = (await call(app, 'GET', `/api/devices/${a!.id}`)).body;
  t.equal(device.rotation_state, 'OK');
  t.ok(device.last_rotation_completed_at);
  await eventually(() => notices.length === 2 && nudges.length === nudgesBefore + 1, 5000);
  t.same(notices, [`iotdevice-thermo-x-${a!.key}`, `iotdevice-thermo-x-${b!.key}`], 'the next device was told');
  t.equal((await call(app, 'GET', '/api/rotation/status')).body.pending_device_id, b!.id);
});

t.test('OIDC on: a device token is matched on azp; user tokens, other clients and device_key are refused', async (t) => {
  const { publicServer: app, issuer } = await buildOidcTestApi(t);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const [a] = await createDevices(app, 1, 'thermo-x', bearer(issuer.token({ sub: 'operator' })));

  const deviceToken = issuer.token({ sub: 'service-account-device', azp: `iotdevice-thermo-x-${a!.key}` });
  const ok = await call(app, 'GET', '/api/iot/provisioning', bearer(deviceToken));
  t.equal(ok.status, 200);
  t.equal(ok.body.client_id, `iotdevice-thermo-x-${a!.key}`);
  t.same((await call(app, 'GET', '/api/iot/config', bearer(deviceToken))).body, { deviceName: 'Device 0', n: 0 });

  t.match(await call(app, 'GET', `/api/iot/config?device_key=${a!.key}`), { status: 401, body: { code: 'UNAUTHORIZED' } }, 'device_key is not accepted with OIDC on');
  t.match(await call(app, 'GET', '/api/iot/config', bearer(issuer.token({ sub: 'alice' }))), { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } }, 'a user token');
  t.match(await call(app, 'GET', '/api/iot/config', bearer(issuer.token({ sub: 'x', azp: 'iotsupport-frontend' }))), { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } });
  t.match(await call(app, 'GET', '/api/iot/config', bearer(issuer.token({ sub: 'x', azp: `iotdevice-other-model-${a!.key}` }))), { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } }, 'right key, wrong model');
  t.match(await call(app, 'GET', '/api/iot/config', bearer(issuer.token({ sub: 'x', azp: 'iotdevice-thermo-x-zzzzzzzz' }))), { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } }, 'unknown device');
  t.match(await call(app, 'GET', '/api/iot/config', bearer(issuer.expiredToken())), { status: 401, body: { code: 'INVALID_TOKEN' } });
  t.match(await call(app, 'GET', '/api/iot/config', bearer(issuer.hs256WithPublicKeyToken())), { status: 401, body: { code: 'INVALID_TOKEN' } });
});
