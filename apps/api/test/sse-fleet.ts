import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
type LightResponse = Awaited<ReturnType<import('fastify').FastifyInstance['inject']>>;
import { Redis } from 'ioredis';
import { loadConfig } from '@iotsupport/config';
import { createDb, DeviceModelRepository, DeviceRepository, migrateToLatest } from '@iotsupport/db';
import { readConsistentSnapshot, type RegistrySnapshot } from '@iotsupport/realtime-state';
import {
  LOCAL_MQTT_URL,
  LOCAL_REDIS_URL,
  createTestDatabase,
  deleteRedisPrefix,
  startGatewayStandin,
  startOidcIssuer,
  uniqueId,
  isolatedRedisPrefix,
  uniqueTopicPrefix,
  type GatewayStandin,
  type OidcIssuer,
} from '@iotsupport/testkit';
import { createApiPod, type ApiPod } from '../src/pod.js';
import { IN_PROCESS_POD_ENV } from './helpers.js';

/**
 * Several api pods in one test process, each built and started by createApiPod (as deployed,
 * forwarding included), sharing what a real fleet shares: one Redis prefix, one PostgreSQL
 * database, one SSE Gateway stand-in (whose callbacks a round-robin balancer spreads over the
 * pods' internal listeners), and optionally one OIDC issuer.
 */
export type Pod = ApiPod;

export interface FleetOptions {
  pods?: number;
  oidc?: boolean;
  /** Extra environment for every pod. */
  env?: Record<string, string>;
}

export const CALLBACK_SECRET = 's3cret-for-tests';

export interface Fleet {
  pods: Pod[];
  gateway: GatewayStandin;
  issuer: OidcIssuer | null;
  prefix: string;
  redis: Redis;
  /** Devices: `entity[i]` has entity id `sensor.<i>`; `noEntity` has none. */
  devices: { entity: number[]; noEntity: number; repo: DeviceRepository };
  /** The registry's whole state, after asserting every cross-key invariant. */
  consistent(): Promise<RegistrySnapshot>;
  /** Injects a gateway callback into one pod, as the gateway would send it. */
  callback(pod: Pod, payload: unknown, secret?: string | null): Promise<LightResponse>;
  connectBody(token: string, requestId: string, headers?: Record<string, string | string[]>): unknown;
  /** POST /api/device-logs/<op> on one pod's public listener. */
  deviceLogs(pod: Pod, op: 'subscribe' | 'unsubscribe', body: unknown, headers?: Record<string, string>): Promise<LightResponse>;
}

export async function startFleet(t: Test, options: FleetOptions = {}): Promise<Fleet> {
  const podCount = options.pods ?? 3;
  const prefix = isolatedRedisPrefix(t);
  const topicPrefix = uniqueTopicPrefix();
  const pods: Pod[] = [];

  let next = 0;
  const balancer: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const pod = pods[next++ % pods.length];
      if (!pod) {
        res.writeHead(503).end();
        return;
      }
      void pod.internalServer
        .inject({ method: req.method as 'POST', url: req.url ?? '/', headers: { 'content-type': req.headers['content-type'] ?? '' }, payload: Buffer.concat(chunks) })
        .then(
          (r) => res.writeHead(r.statusCode, { 'content-type': r.headers['content-type'] as string }).end(r.body),
          // the pod is closing (or failed): answer as a load balancer would, never an unhandled rejection
          () => {
            if (!res.headersSent) res.writeHead(503);
            res.end();
          },
        );
    });
  });
  await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
  const balancerUrl = `http://127.0.0.1:${(balancer.address() as AddressInfo).port}`;
  const gateway = await startGatewayStandin({ callbackUrl: `${balancerUrl}/api/sse/callback?secret=${CALLBACK_SECRET}` });
  const issuer = options.oidc ? await startOidcIssuer() : null;

  const testDb = await createTestDatabase();
  const admin = createDb(testDb.url);
  await migrateToLatest(admin.db);
  const model = await new DeviceModelRepository(admin.db).create({ code: 'm1', name: 'Model 1' });
  const repo = new DeviceRepository(admin.db);
  const entity: number[] = [];
  for (let i = 0; i < 6; i++) {
    entity.push((await repo.create({ key: `dev0000${i}`, device_model_id: model.id, config: { deviceEntityId: `sensor.${i}` } })).id);
  }
  const noEntity = (await repo.create({ key: 'noent000', device_model_id: model.id, config: {} })).id;

  for (let i = 0; i < podCount; i++) {
    const config = loadConfig('api', {
      ...IN_PROCESS_POD_ENV,
      DATABASE_URL: testDb.url,
      REDIS_URL: LOCAL_REDIS_URL,
      MQTT_URL: LOCAL_MQTT_URL,
      REDIS_KEY_PREFIX: prefix,
      MQTT_TOPIC_PREFIX: topicPrefix,
      // unique across test files running in parallel: POD_ID is the MQTT client id, and a shared one
      // makes Mosquitto hand the session from one process to the other (flapping readiness)
      POD_ID: uniqueId(`pod-${String.fromCharCode(97 + i)}`),
      SSE_GATEWAY_URL: gateway.url,
      SSE_CALLBACK_SECRET: CALLBACK_SECRET,
      // Most tests inject connect callbacks with tokens the gateway stand-in does not hold: an
      // owner's probe would find them gone (404) and remove them mid-test. Probing tests set it.
      CONNECTION_PROBE_INTERVAL_SECONDS: '3600',
      ...(issuer ? { OIDC_ENABLED: 'true', OIDC_ISSUER_URL: issuer.url, OIDC_AUDIENCE: issuer.audience, OIDC_CLOCK_SKEW_SECONDS: '0' } : {}),
      ...options.env,
    });
    const pod = createApiPod(config);
    t.teardown(() => pod.stop());
    await pod.start();
    pods.push(pod);
  }

  const redis = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    await gateway.stop();
    await new Promise<void>((resolve) => {
      balancer.close(() => resolve());
      balancer.closeAllConnections();
    });
    await issuer?.close();
    await admin.close();
    await testDb.drop();
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
  });

  return {
    pods,
    gateway,
    issuer,
    prefix,
    redis,
    devices: { entity, noEntity, repo },
    consistent: () => readConsistentSnapshot(redis, prefix),
    callback(pod, payload, secret = CALLBACK_SECRET) {
      const url = secret === null ? '/api/sse/callback' : `/api/sse/callback?secret=${encodeURIComponent(secret)}`;
      return pod.internalServer.inject({ method: 'POST', url, payload: payload as Record<string, unknown> });
    },
    connectBody(token, requestId, headers = {}) {
      return { action: 'connect', token, request: { url: `/events?request_id=${requestId}`, headers: { host: 'gw', ...headers } } };
    },
    deviceLogs(pod, op, body, headers = {}) {
      return pod.publicServer.inject({ method: 'POST', url: `/api/device-logs/${op}`, payload: body as Record<string, unknown>, headers });
    },
  };
}
