import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Per-test isolation on the shared local services: every test gets its own Redis key prefix,
 * PostgreSQL database and MQTT topic root, so parallel test files (and parallel checkouts on the
 * same machine) never see each other's state.
 */
export function uniqueId(label = 't'): string {
  return `${label}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
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

/** Creates an empty PostgreSQL database; `drop()` removes it (call it in t.teardown). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueId('iot_test').toLowerCase();
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
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
