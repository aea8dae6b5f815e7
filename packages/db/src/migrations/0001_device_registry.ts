import { sql, type Kysely } from 'kysely';
import { CONSTRAINTS } from '../constraints.js';

/**
 * `device_models` and `devices` as the contract lists them. Constraint names are explicit: the
 * repository maps unique violations to 409s by constraint name (never by message text).
 * Migrations take `Kysely<any>`: they run against whatever the schema was at their time, not
 * today's `Database` type.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('device_models')
    .addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addUniqueConstraint(CONSTRAINTS.deviceModelCodeUnique, ['code'])
    .execute();

  await db.schema
    .createTable('devices')
    .addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('key', sql`char(8)`, (c) => c.notNull())
    .addColumn('device_model_id', 'integer', (c) => c.notNull())
    .addColumn('config', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('device_name', 'text')
    .addColumn('device_entity_id', 'text')
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('rotation_state', 'text', (c) => c.notNull().defaultTo('OK'))
    .addColumn('cached_secret', 'text')
    .addColumn('secret_created_at', 'timestamptz')
    .addColumn('last_rotation_attempt_at', 'timestamptz')
    .addColumn('last_rotation_completed_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint(CONSTRAINTS.deviceKeyUnique, ['key'])
    // char(8) pads short values with blanks; the cast to text drops them, so 'abc' fails here too.
    .addCheckConstraint(CONSTRAINTS.deviceKeyFormat, sql`key::text ~ '^[a-z0-9]{8}$'`)
    .addCheckConstraint(CONSTRAINTS.deviceRotationState, sql`rotation_state in ('OK', 'QUEUED', 'PENDING', 'TIMEOUT')`)
    .addCheckConstraint(CONSTRAINTS.deviceConfigObject, sql`jsonb_typeof(config) = 'object'`)
    .addForeignKeyConstraint(CONSTRAINTS.deviceModelFk, ['device_model_id'], 'device_models', ['id'], (fk) => fk.onDelete('restrict'))
    .execute();

  await db.schema.createIndex('devices_device_entity_id_idx').on('devices').column('device_entity_id').execute();
  // Every FK column gets an index, so deleting or checking a model never scans all devices.
  await db.schema.createIndex('devices_device_model_id_idx').on('devices').column('device_model_id').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('devices').execute();
  await db.schema.dropTable('device_models').execute();
}
