import t, { type Test } from 'tap';
import { createTestDatabase } from '@iotsupport/testkit';
import { createDb, migrateToLatest, DeviceRepository, DeviceModelRepository, findDeviceById, findDeviceEntityId, constraintError } from '../src/index.js';

async function setup(t: Test) {
  const testDb = await createTestDatabase();
  const handle = createDb(testDb.url);
  t.teardown(async () => {
    await handle.close();
    await testDb.drop();
  });
  await migrateToLatest(handle.db);
  const models = new DeviceModelRepository(handle.db);
  const devices = new DeviceRepository(handle.db);
  const model = await models.create({ code: 'thermo', name: 'Thermometer' });
  return { ...handle, models, devices, model };
}

const rejectsWith = (t: Test, p: Promise<unknown>, code: string, status: number) =>
  t.rejects(p, { name: 'AppError', code, status }, `${status} ${code}`);

t.test('derived columns follow the config on create and on every update', async (t) => {
  const { db, devices, model } = await setup(t);
  const created = await devices.create({ key: 'dev00001', device_model_id: model.id, config: { deviceName: 'Kitchen', deviceEntityId: 'sensor.kitchen', x: 1 } });
  t.match(created, { key: 'dev00001', device_name: 'Kitchen', device_entity_id: 'sensor.kitchen', config: { deviceName: 'Kitchen', x: 1 }, device_model_code: 'thermo', active: true, rotation_state: 'OK' });
  t.type(created.created_at, Date);

  // Put the last write an hour back, so an update that forgot updated_at cannot pass by timing.
  const hourAgo = new Date(Date.now() - 3_600_000);
  await db.updateTable('devices').set({ updated_at: hourAgo }).where('id', '=', created.id).execute();
  const renamed = await devices.update(created.id, { config: { deviceName: 'Hall', deviceEntityId: 'sensor.hall' } });
  t.equal(renamed.device_name, 'Hall');
  t.equal(renamed.device_entity_id, 'sensor.hall');
  t.ok(renamed.updated_at.getTime() >= created.updated_at.getTime(), 'updated_at moves on');
  t.ok(renamed.updated_at.getTime() > hourAgo.getTime() + 1_800_000, 'an update sets updated_at to now');

  const cleared = await devices.update(created.id, { config: { deviceName: '' } });
  t.equal(cleared.device_name, null, 'an empty name clears the column');
  t.equal(cleared.device_entity_id, null, 'a removed key clears the column');

  const deactivated = await devices.update(created.id, { active: false });
  t.equal(deactivated.active, false);
  t.same(deactivated.config, { deviceName: '' }, 'a patch without config keeps the config');

  const fetched = await devices.getById(created.id);
  t.same(fetched, deactivated, 'what a write returns is what a read returns');
});

t.test('config that is not a JSON object is 422, and nothing is written', async (t) => {
  const { devices, model } = await setup(t);
  for (const config of [[1, 2], 'text', 42, null, true]) {
    await rejectsWith(t, devices.create({ key: 'dev00002', device_model_id: model.id, config }), 'INVALID_DEVICE_CONFIG', 422);
  }
  await rejectsWith(t, devices.create({ key: 'dev00002', device_model_id: model.id, config: { deviceEntityId: 7 } }), 'INVALID_DEVICE_CONFIG', 422);
  t.same(await devices.list(), []);
  const d = await devices.create({ key: 'dev00002', device_model_id: model.id });
  t.same(d.config, {}, 'config defaults to an empty object');
  await rejectsWith(t, devices.update(d.id, { config: ['a'] }), 'INVALID_DEVICE_CONFIG', 422);
});

t.test('duplicates, missing rows and unknown models map to registry errors', async (t) => {
  const { devices, models, model } = await setup(t);
  const d = await devices.create({ key: 'dup00001', device_model_id: model.id });
  await rejectsWith(t, devices.create({ key: 'dup00001', device_model_id: model.id }), 'DUPLICATE_DEVICE_KEY', 409);
  await rejectsWith(t, models.create({ code: 'thermo', name: 'Other' }), 'DUPLICATE_DEVICE_MODEL_CODE', 409);
  await rejectsWith(t, devices.create({ key: 'dup00002', device_model_id: 9999 }), 'DEVICE_MODEL_NOT_FOUND', 404);
  await rejectsWith(t, devices.update(d.id, { device_model_id: 9999 }), 'DEVICE_MODEL_NOT_FOUND', 404);
  await rejectsWith(t, devices.create({ key: 'NOT-OK', device_model_id: model.id }), 'VALIDATION_FAILED', 400);
  await rejectsWith(t, devices.getById(9999), 'DEVICE_NOT_FOUND', 404);
  await rejectsWith(t, devices.update(9999, { active: false }), 'DEVICE_NOT_FOUND', 404);
  await devices.delete(d.id);
  await rejectsWith(t, devices.delete(d.id), 'DEVICE_NOT_FOUND', 404);
  t.equal(await devices.findById(d.id), undefined);
});

t.test('findDeviceById gives other packages the full row with the model code', async (t) => {
  const { db, devices, models, model } = await setup(t);
  const other = await models.create({ code: 'plug', name: 'Plug' });
  const a = await devices.create({ key: 'aaaa0001', device_model_id: model.id, config: { deviceEntityId: 'sensor.a' } });
  const b = await devices.create({ key: 'bbbb0001', device_model_id: other.id });
  await db.updateTable('devices').set({ cached_secret: 'enc:xyz' }).where('id', '=', a.id).execute();
  t.match(await findDeviceById(db, a.id), { id: a.id, device_model_code: 'thermo', cached_secret: 'enc:xyz', device_entity_id: 'sensor.a' });
  t.equal((await findDeviceById(db, b.id))?.device_model_code, 'plug');
  t.equal((await devices.findByKey('bbbb0001'))?.id, b.id);
  t.same(await findDeviceEntityId(db, a.id), { entityId: 'sensor.a' }, 'subscribe reads the entity id alone');
  t.same(await findDeviceEntityId(db, b.id), { entityId: null }, 'a device without one');
  t.equal(await findDeviceEntityId(db, 9999), undefined, 'no such device');
  t.same((await devices.list()).map((d) => d.key), ['aaaa0001', 'bbbb0001'], 'list is ordered by id');
  t.same((await models.list()).map((m) => m.code), ['thermo', 'plug']);
});

t.test('constraintError leaves errors it does not know alone', async (t) => {
  t.equal(constraintError(new Error('duplicate key value violates unique constraint "devices_key_key"')), undefined, 'message text is never matched');
  t.equal(constraintError({ code: '23505', constraint: 'some_other_key' }), undefined);
  t.equal(constraintError({ code: '23505', constraint: 'devices_key_key' })?.code, 'DUPLICATE_DEVICE_KEY');
});
