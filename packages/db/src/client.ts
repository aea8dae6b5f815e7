import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

/** The query builder every package takes (`deps.db`). */
export type DatabaseClient = Kysely<Database>;

export interface Db {
  db: DatabaseClient;
  /** The pool under `db`, for readiness probes (`pool.query('select 1')`) and pool metrics. */
  pool: pg.Pool;
  /** Ends the pool; idempotent. */
  close(): Promise<void>;
}

export interface CreateDbOptions {
  /** Connections at most (pg default 10). */
  max?: number;
  /** Set as `application_name`, so `pg_stat_activity` says which app holds a connection. */
  applicationName?: string;
}

/** One pool per process; every query goes through the returned kysely instance. */
export function createDb(url: string, options: CreateDbOptions = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'iotsupport',
    // Fail a query fast when the database is unreachable instead of hanging a request.
    connectionTimeoutMillis: 5000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let closing: Promise<void> | undefined;
  return {
    db,
    pool,
    close: () => (closing ??= db.destroy()),
  };
}
