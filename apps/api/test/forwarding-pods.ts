import { createServer, request as httpRequest } from 'node:http';
import { Redis } from 'ioredis';
import { loadConfig } from '@iotsupport/config';
import { encodeLogChannelMessage, logChannelName } from '@iotsupport/contracts';
import { ConnectionRegistry } from '@iotsupport/realtime-state';
import type { ConnectionService, Forwarding } from '@iotsupport/sse-connections';
import {
  ADMIN_DATABASE_URL,
  LOCAL_MQTT_URL,
  LOCAL_REDIS_URL,
  listenOnLoopback,
  deleteRedisPrefix,
  openSse,
  readRequestBody,
  startGatewayStandin,
  uniqueId,
  isolatedRedisPrefix,
  uniqueTopicPrefix,
  type GatewayStandin,
  type SseClient,
} from '@iotsupport/testkit';
import { createApiPod, type ApiPod } from '../src/pod.js';
import { IN_PROCESS_POD_ENV } from './helpers.js';

/**
 * An in-process fleet for forwarding tests: N api pods, each built and started by createApiPod
 * (the real callback route, connection service and forwarding), behind one callback "load
 * balancer", the testkit's SSE Gateway stand-in, real Redis. Subscriptions go straight to a pod's
 * ConnectionService (the device-logs route only adds the device lookup in PostgreSQL).
 */
export interface Pod {
  /** The name given to startPod (its POD_ID is that name made unique per run). */
  id: string;
  api: ApiPod;
  /** Its internal listener's callback URL (where the balancer sends the gateway's callbacks). */
  callbackUrl: string;
  forwarding: Forwarding;
  connections: ConnectionService;
  /** Registry reads on the pod's own Redis connection. */
  registry: ConnectionRegistry;
  metrics: ApiPod['deps']['metrics']['registry'];
  redis: Redis;
  /** Callbacks this pod refuses to answer (simulating a lost disconnect callback). */
  ignoreDisconnectOf: Set<string>;
}

export interface Fleet {
  prefix: string;
  /** The (first) gateway stand-in; per-pod topology: `gateways[i]` is pod i's. */
  gateway: GatewayStandin;
  gateways: GatewayStandin[];
  /** Where pods send (the shared stand-in). */
  sendUrl: string;
  pods: Pod[];
  publisher: Redis;
  /** A browser opens a stream (per-pod: on gateway `gatewayIndex`, i.e. through pod `gatewayIndex`). */
  open(requestId: string, gatewayIndex?: number): Promise<SseClient>;
  subscribe(requestId: string, deviceId: number, entityId: string, pod?: Pod): Promise<void>;
  unsubscribe(requestId: string, deviceId: number, pod?: Pod): Promise<void>;
  publishBatch(entityId: string, batchId: string, docs: Record<string, unknown>[]): Promise<void>;
  startPod(id: string): Promise<Pod>;
  /** Cuts the pod's command connection: it can no longer renew its lease (a partitioned or frozen process). */
  partition(pod: Pod): void;
}

export interface FleetOptions {
  pods?: number;
  /** per-pod: one gateway stand-in beside each pod, whose callbacks go to that pod only. */
  topology?: 'shared' | 'per-pod';
  /** Extra environment of every pod (config names as in @iotsupport/config). */
  env?: Record<string, string>;
  /** Delay the gateway's answer to sends whose token is in this set (a slow browser connection). */
  slowTokens?: Set<string>;
  slowDelayMs?: number;
  /** The gateway answers 503 to every send whose token is in this set (add to fail, delete to heal). */
  failingTokens?: Set<string>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

const CALLBACK_SECRET = 'forwarding-pods-secret';

export async function startFleet(t: Teardown, options: FleetOptions = {}): Promise<Fleet> {
  const prefix = isolatedRedisPrefix(t);
  const pods: Pod[] = [];
  const admin = new Redis(LOCAL_REDIS_URL);
  const publisher = new Redis(LOCAL_REDIS_URL);

  const perPod = options.topology === 'per-pod';
  const podCount = options.pods ?? 3;
  const livePods = () => pods.filter((p) => p.forwarding.ready);
  const randomPod = () => {
    const live = livePods();
    return live[Math.floor(Math.random() * live.length)];
  };

  // The gateways' CALLBACK_URL. Shared topology: a balancer handing each callback to a random live
  // pod's internal listener. Per-pod: /cb/<i> is pod i (its own gateway calls only it).
  const balancer = createServer((req, res) => {
    void readRequestBody(req).then((raw) => {
      const index = Number((req.url ?? '').split('/').pop());
      const pod = perPod ? pods[index] : randomPod();
      const body = JSON.parse(raw.toString('utf8')) as { action: string; token: string };
      if (!pod) return void res.writeHead(503).end();
      if (body.action === 'disconnect' && pods.some((p) => p.ignoreDisconnectOf.has(body.token))) {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }
      const forward = httpRequest(pod.callbackUrl, { method: 'POST', headers: { 'content-type': 'application/json' } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, { 'content-type': 'application/json' });
        answer.pipe(res);
      });
      forward.on('error', () => res.headersSent || res.writeHead(503).end()); // this pod is down
      forward.end(raw);
    });
  });
  const balancerPort = await listenOnLoopback(balancer);
  const gateways: GatewayStandin[] = [];
  // Slow tokens: the stand-in holds their sends back (a slow browser connection behind the gateway).
  const slow = options.slowTokens;
  const sendDelayMs = (token: string) => (slow?.has(token) ? (options.slowDelayMs ?? 200) : 0);
  const failSend = (token: string) => options.failingTokens?.has(token) ?? false;
  for (let i = 0; i < (perPod ? podCount : 1); i++) {
    gateways.push(await startGatewayStandin({ callbackUrl: `http://127.0.0.1:${balancerPort}/cb/${i}`, sendDelayMs, failSend }));
  }
  const gateway = gateways[0]!;
  const clients: SseClient[] = [];

  const topicPrefix = uniqueTopicPrefix();
  const env = (podIndex: number): Record<string, string> => ({
    ...IN_PROCESS_POD_ENV,
    // never queried: subscriptions go to the ConnectionService, not the device-logs route
    DATABASE_URL: ADMIN_DATABASE_URL,
    REDIS_URL: LOCAL_REDIS_URL,
    MQTT_URL: LOCAL_MQTT_URL,
    REDIS_KEY_PREFIX: prefix,
    MQTT_TOPIC_PREFIX: topicPrefix,
    SSE_CALLBACK_SECRET: CALLBACK_SECRET,
    SSE_GATEWAY_URL: perPod ? gateways[podIndex]!.url : gateway.url,
    SSE_GATEWAY_TOPOLOGY: perPod ? 'per-pod' : 'shared',
    OWNERSHIP_LEASE_SECONDS: '2',
    CONNECTION_PROBE_INTERVAL_SECONDS: '60',
    GATEWAY_SEND_CONCURRENCY: '32',
    GATEWAY_SEND_TIMEOUT_MS: '1000',
    GATEWAY_SEND_RETRIES: '2',
    GATEWAY_CONNECTION_QUEUE_LIMIT: '500',
    GATEWAY_CONNECTION_QUEUE_BYTES: String(4 * 1024 * 1024),
    GRACEFUL_SHUTDOWN_TIMEOUT: '10',
    ...options.env,
  });

  const fleet: Fleet = {
    prefix,
    gateway,
    gateways,
    sendUrl: gateway.url,
    pods,
    publisher,
    async open(requestId, gatewayIndex = 0) {
      const client = openSse(`${gateways[gatewayIndex]!.url}/events?request_id=${requestId}`, { timeoutMs: 10_000 });
      clients.push(client);
      await client.waitFor((m) => m.event === 'ready');
      return client;
    },
    async subscribe(requestId, deviceId, entityId, pod = randomPod()!) {
      await pod.connections.subscribe({ requestId, deviceId, entityId, callerSubject: null });
    },
    async unsubscribe(requestId, deviceId, pod = randomPod()!) {
      await pod.connections.unsubscribe({ requestId, deviceId, callerSubject: null });
    },
    async publishBatch(entityId, batchId, docs) {
      const now = Date.now();
      await publisher.publish(
        logChannelName(prefix, entityId),
        encodeLogChannelMessage({ v: 1, batch_id: batchId, device_entity_id: entityId, docs, received_at_ms: now, ingested_at_ms: now }),
      );
    },
    async startPod(id) {
      const config = loadConfig('api', { ...env(pods.length), POD_ID: uniqueId(id) });
      const api = createApiPod(config, { tuning: { takeoverIntervalMs: 200, reconcileIntervalMs: 1000, orphanIntervalMs: 1000 } });
      await api.start();
      const { sse } = api.services;
      const redis = api.clients.redis;
      const pod: Pod = {
        id,
        api,
        callbackUrl: `${api.addresses().internal}/api/sse/callback?secret=${CALLBACK_SECRET}`,
        forwarding: sse.forwarding,
        connections: sse.connections,
        registry: new ConnectionRegistry(redis, prefix),
        metrics: api.deps.metrics.registry,
        redis,
        ignoreDisconnectOf: new Set(),
      };
      pods.push(pod);
      return pod;
    },
    partition(pod) {
      pod.forwarding.lease.halt();
      pod.redis.disconnect();
    },
  };

  for (let i = 0; i < podCount; i++) await fleet.startPod(`pod-${i}`);

  t.teardown(async () => {
    for (const c of clients) c.close();
    for (const pod of pods) await pod.api.stop();
    for (const g of gateways) await g.stop();
    balancer.close();
    balancer.closeAllConnections();
    await deleteRedisPrefix(admin, prefix);
    admin.disconnect();
    publisher.disconnect();
  });
  return fleet;
}

/** device-logs payloads a client received, in order. */
export function deviceLogs(client: SseClient): Array<{ device_entity_id: string; logs: Array<Record<string, unknown>>; dropped?: number }> {
  return client
    .envelopes()
    .filter((e) => e.type === 'device-logs')
    .map((e) => e.payload as { device_entity_id: string; logs: Array<Record<string, unknown>>; dropped?: number });
}

export { metricValue } from '@iotsupport/testkit';
