import { sql, type Kysely } from 'kysely';
import type { Database } from '@iotsupport/db';

/** An outbox row: the client whose state at the identity provider must follow PostgreSQL. */
export interface OutboxRow {
  id: string;
  client_id: string;
}

/**
 * `idp_outbox` (migration 0003). Rows are added inside the transaction of the change they follow
 * and removed by whoever brings the client in line (device-clients.ts), under the client's lock.
 */
export const idpOutbox = {
  /** Rows due now, oldest first. */
  async due(db: Kysely<Database>, limit = 100): Promise<OutboxRow[]> {
    return db
      .selectFrom('idp_outbox')
      .select(['id', 'client_id'])
      .where('next_attempt_at', '<=', sql<Date>`now()`)
      .orderBy('id')
      .limit(limit)
      .execute();
  },

  /** `notBeforeSeconds`: a guard row that only becomes due if its writer did not finish (crashed) by then. */
  async add(db: Kysely<Database>, clientIds: string[], notBeforeSeconds = 0): Promise<OutboxRow[]> {
    if (clientIds.length === 0) return [];
    return db
      .insertInto('idp_outbox')
      .values(clientIds.map((client_id) => ({ client_id, next_attempt_at: sql`now() + make_interval(secs => ${notBeforeSeconds})` })))
      .returning(['id', 'client_id'])
      .execute();
  },

  /** True when this call removed the row (nobody else applied it first). */
  async take(db: Kysely<Database>, id: string): Promise<boolean> {
    const row = await db.deleteFrom('idp_outbox').where('id', '=', id).returning('id').executeTakeFirst();
    return row !== undefined;
  },

  /** False when the row is gone (applied meanwhile). */
  async makeDue(db: Kysely<Database>, id: string): Promise<boolean> {
    const row = await db.updateTable('idp_outbox').set({ next_attempt_at: sql`now()` }).where('id', '=', id).returning('id').executeTakeFirst();
    return row !== undefined;
  },

  async recordFailure(db: Kysely<Database>, id: string, error: string): Promise<void> {
    await db
      .updateTable('idp_outbox')
      .set({ attempts: sql`attempts + 1`, last_error: error.slice(0, 500) })
      .where('id', '=', id)
      .execute();
  },

  /** Rows that failed at least once: the identity provider is out of step right now. */
  async failing(db: Kysely<Database>): Promise<number> {
    const row = await db.selectFrom('idp_outbox').select(sql<number>`count(*)::int`.as('n')).where('attempts', '>', 0).executeTakeFirstOrThrow();
    return row.n;
  },

  async pending(db: Kysely<Database>): Promise<number> {
    const row = await db.selectFrom('idp_outbox').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
    return row.n;
  },
};
