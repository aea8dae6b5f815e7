import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { buildTestApi } from './helpers.js';

type Json = Record<string, unknown>;

async function call(app: FastifyInstance, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as Json }) });
  return { status: res.statusCode, body: res.body ? (res.json() as Json & Json[]) : undefined };
}

t.test('device models: list, create, duplicate code, validation', async (t) => {
  const { publicServer: app } = await buildTestApi(t);
  t.same((await call(app, 'GET', '/api/device-models')).body, []);

  const created = await call(app, 'POST', '/api/device-models', { code: 'thermo', name: 'Thermometer' });
  t.equal(created.status, 201);
  t.match(created.body, { id: Number, code: 'thermo', name: 'Thermometer' });
  t.same((await call(app, 'GET', '/api/device-models')).body, [created.body]);

  t.same(await call(app, 'POST', '/api/device-models', { code: 'thermo', name: 'Again' }), {
    status: 409,
    body: { error: 'A device model with this code already exists', code: 'DUPLICATE_DEVICE_MODEL_CODE' },
  });
  for (const bad of [{ code: 'Thermo!', name: 'x' }, { code: 'ok' }, { code: 'ok', name: '' }, { code: 'ok', name: 'x', extra: 1 }]) {
    t.match(await call(app, 'POST', '/api/device-models', bad), { status: 400, body: { code: 'VALIDATION_FAILED' } }, `refused: ${JSON.stringify(bad)}`);
  }
  const notJson = await app.inject({ method: 'POST', url: '/api/device-models', headers: { 'content-type': 'application/json' }, payload: '{"code":' });
  t.equal(notJson.statusCode, 400);
  t.equal(notJson.json().code, 'INVALID_JSON');
});

t.test('devices: create, read, list, update, delete with derived columns', async (t) => {
  const { publicServer: app } = await buildTestApi(t);
  const model = (await call(app, 'POST', '/api/device-models', { code: 'thermo', name: 'Thermometer' })).body!;

  const created = await call(app, 'POST', '/api/devices', {
    key: 'abcd1234',
    device_model_id: model.id,
    config: { deviceName: 'Kitchen', deviceEntityId: 'sensor.kitchen', interval: 5 },
  });
  t.equal(created.status, 201);
  const device = created.body!;
  t.match(device, {
    id: Number,
    key: 'abcd1234',
    device_model_id: model.id,
    device_model_code: 'thermo',
    config: { deviceName: 'Kitchen', deviceEntityId: 'sensor.kitchen', interval: 5 },
    device_name: 'Kitchen',
    device_entity_id: 'sensor.kitchen',
    active: true,
    rotation_state: 'OK',
    secret_created_at: null,
    created_at: String,
  });
  t.notOk('cached_secret' in device, 'the cached secret is never exposed');
  t.notOk('client_secret' in device, 'nor any other secret column');

  t.same((await call(app, 'GET', `/api/devices/${device.id}`)).body, device);
  t.same((await call(app, 'GET', '/api/devices')).body, [device]);

  const updated = await call(app, 'PUT', `/api/devices/${device.id}`, { config: { deviceName: 'Hall', deviceEntityId: 'sensor.hall' }, active: false });
  t.equal(updated.status, 200);
  t.match(updated.body, { device_name: 'Hall', device_entity_id: 'sensor.hall', active: false, key: 'abcd1234' });
  const cleared = await call(app, 'PUT', `/api/devices/${device.id}`, { config: {} });
  t.match(cleared.body, { device_name: null, device_entity_id: null, active: false }, 'derived columns follow the config; other fields kept');

  const del = await app.inject({ method: 'DELETE', url: `/api/devices/${device.id}` });
  t.equal(del.statusCode, 204);
  t.equal(del.body, '', '204 has no body');
  t.same((await call(app, 'GET', '/api/devices')).body, []);
});

t.test('devices: every error status with its code', async (t) => {
  const { publicServer: app } = await buildTestApi(t);
  const model = (await call(app, 'POST', '/api/device-models', { code: 'thermo', name: 'Thermometer' })).body!;
  const existing = (await call(app, 'POST', '/api/devices', { key: 'exist001', device_model_id: model.id })).body!;
  const expect = async (label: string, req: Promise<{ status: number; body?: Json }>, status: number, code: string) => {
    const res = await req;
    t.equal(res.status, status, `${label}: status`);
    t.equal(res.body?.code, code, `${label}: code`);
    t.type(res.body?.error, 'string', `${label}: message`);
  };

  await expect('duplicate key', call(app, 'POST', '/api/devices', { key: 'exist001', device_model_id: model.id }), 409, 'DUPLICATE_DEVICE_KEY');
  await expect('unknown model', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: 999 }), 404, 'DEVICE_MODEL_NOT_FOUND');
  await expect('config array', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: model.id, config: [1] }), 422, 'INVALID_DEVICE_CONFIG');
  await expect('config string', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: model.id, config: '{}' }), 422, 'INVALID_DEVICE_CONFIG');
  await expect('config null', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: model.id, config: null }), 422, 'INVALID_DEVICE_CONFIG');
  await expect('entity id not a string', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: model.id, config: { deviceEntityId: 1 } }), 422, 'INVALID_DEVICE_CONFIG');
  await expect('key too short', call(app, 'POST', '/api/devices', { key: 'abc', device_model_id: model.id }), 400, 'VALIDATION_FAILED');
  await expect('key upper case', call(app, 'POST', '/api/devices', { key: 'ABCD1234', device_model_id: model.id }), 400, 'VALIDATION_FAILED');
  await expect('model id as string', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: String(model.id) }), 400, 'VALIDATION_FAILED');
  await expect('missing model id', call(app, 'POST', '/api/devices', { key: 'new00001' }), 400, 'VALIDATION_FAILED');
  await expect('unknown field', call(app, 'POST', '/api/devices', { key: 'new00001', device_model_id: model.id, cached_secret: 'x' }), 400, 'VALIDATION_FAILED');

  await expect('get missing', call(app, 'GET', '/api/devices/999999'), 404, 'DEVICE_NOT_FOUND');
  await expect('get non-integer id', call(app, 'GET', '/api/devices/abc'), 400, 'VALIDATION_FAILED');
  await expect('get id 0', call(app, 'GET', '/api/devices/0'), 400, 'VALIDATION_FAILED');
  await expect('get id beyond int4', call(app, 'GET', '/api/devices/99999999999'), 400, 'VALIDATION_FAILED');

  await expect('put missing', call(app, 'PUT', '/api/devices/999999', { active: false }), 404, 'DEVICE_NOT_FOUND');
  await expect('put empty body', call(app, 'PUT', `/api/devices/${existing.id}`, {}), 400, 'VALIDATION_FAILED');
  await expect('put key (immutable)', call(app, 'PUT', `/api/devices/${existing.id}`, { key: 'other001' }), 400, 'VALIDATION_FAILED');
  await expect('put config number', call(app, 'PUT', `/api/devices/${existing.id}`, { config: 5 }), 422, 'INVALID_DEVICE_CONFIG');
  await expect('put unknown model', call(app, 'PUT', `/api/devices/${existing.id}`, { device_model_id: 999 }), 404, 'DEVICE_MODEL_NOT_FOUND');

  await expect('delete missing', call(app, 'DELETE', '/api/devices/999999'), 404, 'DEVICE_NOT_FOUND');
  await expect('delete bad id', call(app, 'DELETE', '/api/devices/x'), 400, 'VALIDATION_FAILED');

  t.same(
    ((await call(app, 'GET', '/api/devices')).body as Json[]).map((d) => d.key),
    ['exist001'],
    'no refused request wrote anything',
  );
});
