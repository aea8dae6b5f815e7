import { sql, type Kysely } from 'kysely';

/**
 * What credential rotation needs beyond the device registry:
 * - `client_secret`: the device's current client secret, AES-256-GCM encrypted (packages/rotation,
 *   secret-box.ts); `cached_secret` (0001) keeps the previous one for a restore on timeout.
 * - `cached_secret_created_at`: when that previous secret was made, restored with it, so
 *   "oldest secret first" and the dashboard keep telling the truth after a timeout.
 * - `devices_one_pending_idx`: a partial unique index on a constant, so the database itself
 *   refuses a second PENDING device whatever the number of api pods and workers racing.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('devices')
    .addColumn('client_secret', 'text')
    .addColumn('cached_secret_created_at', 'timestamptz')
    .execute();
  await sql`create unique index devices_one_pending_idx on devices ((true)) where rotation_state = 'PENDING'`.execute(db);
  // The picker's order (state, then oldest secret / oldest attempt) over the few devices in play.
  await sql`create index devices_rotation_candidates_idx on devices (rotation_state, secret_created_at, last_rotation_attempt_at) where rotation_state in ('QUEUED', 'TIMEOUT')`.execute(
    db,
  );
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists devices_rotation_candidates_idx`.execute(db);
  await sql`drop index if exists devices_one_pending_idx`.execute(db);
  await db.schema.alterTable('devices').dropColumn('cached_secret_created_at').dropColumn('client_secret').execute();
}
