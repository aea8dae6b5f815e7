import { sql, type Kysely } from 'kysely';

/**
 * `idp_outbox`: device clients whose state at the identity provider must be brought in line with
 * PostgreSQL. A row is written in the same transaction as the change it follows (device created,
 * deleted, model changed, secret restored on a rotation timeout), so a crash or an identity-provider
 * outage after the commit leaves the row behind, and the worker's retry repairs the client
 * (packages/rotation/src/device-clients.ts). Rows name the client id, not the device: a deleted
 * device's row must outlive it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('idp_outbox')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('idp_outbox_next_attempt_at_idx').on('idp_outbox').column('next_attempt_at').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('idp_outbox').execute();
}
