import type { Test } from 'tap';
import { loadConfig } from '@iotsupport/config';
import { createDb, migrateToLatest } from '@iotsupport/db';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, createTestDatabase, isolatedRedisPrefix, startOidcIssuer, uniqueTopicPrefix, type OidcIssuer } from '@iotsupport/testkit';
import { createApiPod, type ApiPod } from '../src/pod.js';

/** The environment every in-process test pod gets: loopback, free ports, no drain wait, quiet logs. */
export const IN_PROCESS_POD_ENV = { HOST: '127.0.0.1', PORT: '0', INTERNAL_PORT: '0', SHUTDOWN_DRAIN_SECONDS: '0', LOG_LEVEL: 'silent' };

/**
 * The api as deployed (createApiPod, started on free loopback ports) on real services, isolated:
 * own database (migrated), Redis key prefix and MQTT topic root. Stopped and dropped in t.teardown.
 */
export async function buildTestApi(t: Test, env: Record<string, string> = {}): Promise<ApiPod> {
  const pod = await createTestPod(t, env);
  await pod.start();
  return pod;
}

/** buildTestApi's pod before start(): its routes are registered only then (route table tests). */
export async function createTestPod(t: Test, env: Record<string, string> = {}): Promise<ApiPod> {
  const redisKeyPrefix = isolatedRedisPrefix(t);
  const testDb = await createTestDatabase();
  const migrator = createDb(testDb.url);
  await migrateToLatest(migrator.db);
  await migrator.close();
  const config = loadConfig('api', {
    ...IN_PROCESS_POD_ENV,
    DATABASE_URL: testDb.url,
    REDIS_URL: LOCAL_REDIS_URL,
    MQTT_URL: LOCAL_MQTT_URL,
    REDIS_KEY_PREFIX: redisKeyPrefix,
    MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
    ...env,
  });
  const pod = createApiPod(config);
  t.teardown(async () => {
    await pod.stop();
    await testDb.drop();
  });
  return pod;
}

/** buildTestApi with OIDC on, verifying tokens of its own test issuer (closed in t.teardown). */
export async function buildOidcTestApi(t: Test, env: Record<string, string> = {}): Promise<ApiPod & { issuer: OidcIssuer }> {
  const issuer = await startOidcIssuer();
  t.teardown(() => issuer.close());
  return { ...(await buildTestApi(t, oidcEnv(issuer, env))), issuer };
}

/** The environment of a pod verifying `issuer`'s tokens. */
export function oidcEnv(issuer: OidcIssuer, env: Record<string, string> = {}): Record<string, string> {
  return { OIDC_ENABLED: 'true', OIDC_ISSUER_URL: issuer.url, OIDC_AUDIENCE: issuer.audience, ...env };
}
