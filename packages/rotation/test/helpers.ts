import type { Test } from 'tap';
import { sql } from 'kysely';
import { createLogger, type Logger } from '@iotsupport/observability';
import { createDb, migrateToLatest, DeviceModelRepository, DeviceRepository, type Db, type Device } from '@iotsupport/db';
import { createTestDatabase } from '@iotsupport/testkit';

export const silentLogger: Logger = createLogger({ level: 'silent', app: 'test', podId: 'test' });

export interface Fleet {
  db: Db;
  devices: Device[];
  modelCode: string;
}

/** A migrated test database with `count` active devices of one model; dropped in teardown. */
export async function createFleet(t: Test, count: number, modelCode = 'thermo-x'): Promise<Fleet> {
  const testDb = await createTestDatabase();
  const db = createDb(testDb.url, { max: 30 });
  t.teardown(async () => {
    await db.close();
    await testDb.drop();
  });
  await migrateToLatest(db.db);
  const model = await new DeviceModelRepository(db.db).create({ code: modelCode, name: 'Thermostat X' });
  const repo = new DeviceRepository(db.db);
  const devices: Device[] = [];
  for (let i = 0; i < count; i += 1) {
    devices.push(await repo.create({ key: `dev${String(i).padStart(5, '0')}`, device_model_id: model.id, config: { deviceName: `Device ${i}`, n: i } }));
  }
  return { db, devices, modelCode };
}

export async function stateOf(db: Db, id: number): Promise<string> {
  const row = await db.db.selectFrom('devices').select('rotation_state').where('id', '=', id).executeTakeFirstOrThrow();
  return row.rotation_state;
}

export async function pendingCount(db: Db): Promise<number> {
  const row = await db.db
    .selectFrom('devices')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('rotation_state', '=', 'PENDING')
    .executeTakeFirstOrThrow();
  return row.n;
}

/** Moves a PENDING device's attempt into the past, as if ROTATION_TIMEOUT_SECONDS had elapsed. */
export async function ageAttempt(db: Db, id: number, seconds: number): Promise<void> {
  await sql`update devices set last_rotation_attempt_at = last_rotation_attempt_at - make_interval(secs => ${seconds}),
            secret_created_at = secret_created_at - make_interval(secs => ${seconds}) where id = ${id}`.execute(db.db);
}
