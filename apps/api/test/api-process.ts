import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { createDb, migrateToLatest, seedDemoData } from '@iotsupport/db';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, createTestDatabase, isolatedRedisPrefix, uniqueId, uniqueTopicPrefix } from '@iotsupport/testkit';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface ApiChild {
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr. */
  output: () => string;
  exit: Promise<number | null>;
}

/** main.ts in a child process with exactly `env` (and PATH). */
export function startApi(env: Record<string, string>): ApiChild {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exit = once(child, 'close').then(([code]) => code as number | null);
  return { child, output: () => output, exit };
}

/**
 * The environment of an api child on its own migrated database (`seed`: with the demo devices),
 * Redis prefix and topic root, listening on ports 0 of loopback (the addresses come from its
 * start-up log lines, `listeningUrls`). The database is dropped in t.teardown.
 */
export async function isolatedApiEnv(t: Test, options: { seed?: boolean } = {}): Promise<Record<string, string>> {
  // Registered first, so its keys are deleted last: after the process (torn down later) is gone.
  const redisKeyPrefix = isolatedRedisPrefix(t);
  const testDb = await createTestDatabase();
  const handle = createDb(testDb.url);
  await migrateToLatest(handle.db);
  if (options.seed) await seedDemoData(handle.db);
  await handle.close();
  t.teardown(() => testDb.drop());
  return {
    PORT: '0',
    INTERNAL_PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: testDb.url,
    REDIS_URL: LOCAL_REDIS_URL,
    MQTT_URL: LOCAL_MQTT_URL,
    REDIS_KEY_PREFIX: redisKeyPrefix,
    MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
    POD_ID: uniqueId('pod'),
  };
}
