import { randomBytes } from 'node:crypto';
import { Redis as IORedis, type Redis } from 'ioredis';
import pg from 'pg';

/**
 * Per-test isolation on the shared local services: every test gets its own Redis key prefix,
 * PostgreSQL database and MQTT topic root, so parallel test files (and parallel checkouts on the
 * same machine) never see each other's state.
 *
 * `make test` (infra/dev/test.sh) sets TEST_RUN_ID so every name this run creates carries it:
 * after tap, the run checks that no Redis key `test_<id>_*` and no database `*_<id>_*` is left,
 * without mistaking another checkout's run in progress for a leak of this one.
 */
export const RUN_ID_PATTERN = /^[a-z0-9]{1,16}$/;
const RUN_TAG = RUN_ID_PATTERN.test(process.env.TEST_RUN_ID ?? '') ? `${process.env.TEST_RUN_ID}_` : '';

/** `<label>_[<run id>_]<time>_<random>`: unique across tests, runs and checkouts. */
export function uniqueId(label = 't'): string {
  return `${label}_${RUN_TAG}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export const LOCAL_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const LOCAL_MQTT_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A Redis key prefix no other test uses (config: REDIS_KEY_PREFIX). */
export function uniqueRedisPrefix(): string {
  return uniqueId('test');
}

/** An MQTT topic root no other test uses (config: MQTT_TOPIC_PREFIX); ends with '/'. */
export function uniqueTopicPrefix(): string {
  return `${uniqueId('test')}/`;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** One statement on the admin database (CREATE/DROP DATABASE, pg_database), on its own connection. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    return (await admin.query<R>(text, values)).rows;
  } finally {
    await admin.end();
  }
}

/** Creates an empty PostgreSQL database; `drop()` removes it (call it in t.teardown). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueId('iot_test').toLowerCase();
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/** What isolatedRedisPrefix needs of a tap test. */
export interface TeardownScope {
  teardown(fn: () => unknown): void;
}

/**
 * A Redis key prefix no other test uses, whose keys are all deleted when the test ends. Call it
 * BEFORE starting anything that writes under the prefix: tap runs teardowns last-in first-out, so
 * the deletion runs after every client, pod and process registered later has closed — a key
 * written while closing (a pod leaving the fleet, BullMQ's queue meta) is deleted too.
 */
export function isolatedRedisPrefix(t: TeardownScope, redisUrl = LOCAL_REDIS_URL): string {
  const prefix = uniqueRedisPrefix();
  t.teardown(async () => {
    const redis = new IORedis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await deleteRedisPrefix(redis, prefix);
    } finally {
      redis.disconnect();
    }
  });
  return prefix;
}

/** Deletes every Redis key under a test prefix (SCAN, never KEYS). */
export async function deleteRedisPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Polls until `check` returns a truthy value or `timeoutMs` passes (tests wait on behaviour, not on sleeps). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
