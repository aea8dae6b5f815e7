import { Migrator, type Kysely, type MigrationResult } from 'kysely';
import { staticMigrationProvider } from './migrations/index.js';

export class MigrationError extends Error {
  constructor(
    readonly migrationName: string | undefined,
    cause: unknown,
  ) {
    super(`migration ${migrationName ?? '(unknown)'} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MigrationError';
  }
}

/**
 * Applies every pending migration in order; a no-op when the schema is current. Kysely takes a
 * lock table first, so several pods (or `make migrate` next to a running pod) can call this at
 * once. Returns the names it applied.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: staticMigrationProvider });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) {
    const failed = results.find((r: MigrationResult) => r.status === 'Error');
    throw new MigrationError(failed?.migrationName, error);
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
