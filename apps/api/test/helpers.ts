import type { Test } from 'tap';
import { loadConfig, type Config } from '@iotsupport/config';
import { migrateToLatest } from '@iotsupport/db';
import { Lifecycle, createLogger, createMetrics } from '@iotsupport/observability';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, createTestDatabase, isolatedRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';
import { buildApi, type ApiDeps, type ApiServers } from '../src/app.js';
import { createClients } from '../src/clients.js';

export interface TestApi extends ApiServers {
  deps: ApiDeps;
  config: Config;
}

/**
 * The api as main.ts wires it, on real services, isolated: own database (migrated), Redis key
 * prefix and MQTT topic root. Everything is closed and dropped in t.teardown; the prefix's keys
 * last, after the api closed (its queue and pod write while closing).
 */
export async function buildTestApi(t: Test, env: Record<string, string> = {}): Promise<TestApi> {
  const redisKeyPrefix = isolatedRedisPrefix(t);
  const testDb = await createTestDatabase();
  const config = loadConfig('api', {
    DATABASE_URL: testDb.url,
    REDIS_URL: LOCAL_REDIS_URL,
    MQTT_URL: LOCAL_MQTT_URL,
    REDIS_KEY_PREFIX: redisKeyPrefix,
    MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
    LOG_LEVEL: 'silent',
    ...env,
  });
  const logger = createLogger({ level: config.LOG_LEVEL, app: 'api', podId: config.POD_ID });
  const metrics = createMetrics('api');
  const lifecycle = new Lifecycle(logger, metrics.shuttingDown, config.GRACEFUL_SHUTDOWN_TIMEOUT);
  const clients = createClients(config, logger);
  clients.addReadinessChecks(lifecycle);
  await migrateToLatest(clients.database.db);
  const deps: ApiDeps = { config, logger, metrics, lifecycle, db: clients.database.db, redis: clients.redis, mqtt: clients.mqtt };
  const servers = buildApi(deps);
  t.teardown(async () => {
    await servers.publicServer.close();
    await servers.internalServer.close();
    await clients.close();
    await testDb.drop();
  });
  return { ...servers, deps, config };
}
