import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_device_registry.js';
import * as m0002 from './0002_rotation_state_machine.js';
import * as m0003 from './0003_identity_provider_outbox.js';

/**
 * Every migration, in order. Kysely applies them by name (sorted), so names start with a
 * zero-padded sequence number. Statically imported, so they run from `dist` (or a bundle) with
 * no directory scan.
 *
 * To add one: create `NNNN_what.ts` next to this file exporting `up` (and `down`), then add ONE
 * line below. Never edit or rename a migration that has shipped.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001_device_registry': m0001,
  '0002_rotation_state_machine': m0002,
  '0003_identity_provider_outbox': m0003,
  // ---- append new migrations above this line ----
};

/** Hands kysely's Migrator the registry above. */
export const staticMigrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
