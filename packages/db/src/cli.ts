#!/usr/bin/env node
import { loadConfigOrExit } from '@iotsupport/config';
import { createDb } from './client.js';
import { ensureDatabaseExists } from './create-database.js';
import { migrateToLatest } from './migrate.js';
import { seedDemoData } from './seed.js';

/**
 * `node packages/db/dist/src/cli.js migrate|seed` (used by `make migrate` / `make seed` and by
 * deploy jobs). Reads DATABASE_URL through the api's config, so a bad value is reported the same
 * way the app would report it.
 */
const USAGE = 'usage: cli.js migrate|seed';

async function main(command: string | undefined): Promise<void> {
  if (command !== 'migrate' && command !== 'seed') {
    process.stderr.write(`${USAGE}\n`);
    process.exit(64); // EX_USAGE
  }
  const config = loadConfigOrExit('api');
  const dbName = new URL(config.DATABASE_URL).pathname.slice(1);
  if (command === 'migrate' && (await ensureDatabaseExists(config.DATABASE_URL))) {
    process.stdout.write(`db: created database ${dbName}\n`);
  }
  const { db, close } = createDb(config.DATABASE_URL, { max: 1, applicationName: `iotsupport-db-${command}` });
  try {
    if (command === 'migrate') {
      const applied = await migrateToLatest(db);
      process.stdout.write(`db: ${dbName} ${applied.length ? `applied ${applied.join(', ')}` : 'is up to date'}\n`);
    } else {
      const { modelCreated, devicesCreated } = await seedDemoData(db);
      process.stdout.write(`db: seeded ${dbName} (model ${modelCreated ? 'created' : 'present'}, ${devicesCreated} new devices)\n`);
    }
  } finally {
    await close();
  }
}

main(process.argv[2]).catch((err: unknown) => {
  process.stderr.write(`db: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
