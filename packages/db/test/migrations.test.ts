import t from 'tap';
import { sql } from 'kysely';
import { createTestDatabase } from '@iotsupport/testkit';
import { createDb, migrateToLatest, MIGRATIONS, CONSTRAINTS } from '../src/index.js';

t.test('migrations build the schema of the contract from an empty database', async (t) => {
  const testDb = await createTestDatabase();
  const { db, close } = createDb(testDb.url);
  t.teardown(async () => {
    await close();
    await testDb.drop();
  });

  const applied = await migrateToLatest(db);
  t.same(applied, Object.keys(MIGRATIONS), 'every registered migration runs, in order');

  const columns = await sql<{ table_name: string; column_name: string; data_type: string; is_nullable: string; character_maximum_length: number | null }>`
    select table_name, column_name, data_type, is_nullable, character_maximum_length
    from information_schema.columns where table_schema = 'public' and table_name in ('devices', 'device_models')
    order by table_name, ordinal_position`.execute(db);
  const byTable = (table: string) => columns.rows.filter((c) => c.table_name === table).map((c) => c.column_name);
  t.same(byTable('device_models'), ['id', 'code', 'name']);
  // Later migrations may add columns; the contract's come first, in this order.
  t.same(byTable('devices').slice(0, 14), [
    'id', 'key', 'device_model_id', 'config', 'device_name', 'device_entity_id', 'active', 'rotation_state',
    'cached_secret', 'secret_created_at', 'last_rotation_attempt_at', 'last_rotation_completed_at', 'created_at', 'updated_at',
  ]);
  const col = (name: string) => columns.rows.find((c) => c.table_name === 'devices' && c.column_name === name);
  t.equal(col('key')?.data_type, 'character');
  t.equal(col('key')?.character_maximum_length, 8);
  t.equal(col('config')?.data_type, 'jsonb');
  t.equal(col('created_at')?.data_type, 'timestamp with time zone');

  const constraints = await sql<{ conname: string; contype: string }>`
    select conname, contype from pg_constraint where conrelid in ('devices'::regclass, 'device_models'::regclass)`.execute(db);
  const names = new Map(constraints.rows.map((c) => [c.conname, c.contype]));
  t.equal(names.get(CONSTRAINTS.deviceKeyUnique), 'u', 'unique device key');
  t.equal(names.get(CONSTRAINTS.deviceModelCodeUnique), 'u', 'unique model code');
  t.equal(names.get(CONSTRAINTS.deviceModelFk), 'f', 'devices reference their model');
  t.equal(names.get(CONSTRAINTS.deviceKeyFormat), 'c', 'key format is checked by the database');
  t.equal(names.get(CONSTRAINTS.deviceRotationState), 'c', 'rotation state is one of four values');

  const indexes = await sql<{ indexdef: string }>`select indexdef from pg_indexes where tablename = 'devices'`.execute(db);
  t.ok(indexes.rows.some((i) => /\(device_entity_id\)/.test(i.indexdef)), 'device_entity_id is indexed');

  await sql`insert into device_models (code, name) values ('m', 'M')`.execute(db);
  const model = await sql<{ id: number }>`select id from device_models where code = 'm'`.execute(db);
  const modelId = model.rows[0]!.id;
  const insertKey = (key: string) => sql`insert into devices (key, device_model_id) values (${key}, ${modelId})`.execute(db);
  await insertKey('abcd1234');
  const row = await sql<{ active: boolean; rotation_state: string; config: unknown }>`select active, rotation_state, config from devices`.execute(db);
  t.same(row.rows[0], { active: true, rotation_state: 'OK', config: {} }, 'defaults: active, OK, empty config');
  for (const bad of ['ABCD1234', 'abc', 'abcd-123']) {
    await t.rejects(insertKey(bad), { code: '23514', constraint: CONSTRAINTS.deviceKeyFormat }, `key ${bad} is refused`);
  }
  await t.rejects(
    sql`update devices set rotation_state = 'DONE'`.execute(db),
    { code: '23514', constraint: CONSTRAINTS.deviceRotationState },
    'an unknown rotation state is refused',
  );

  t.same(await migrateToLatest(db), [], 'a second run applies nothing');
});
