import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { encodeLogChannelMessage, logChannelName } from '@iotsupport/contracts';
import { createLogger } from '@iotsupport/observability';
import { LOCAL_REDIS_URL, listenOnLoopback, deleteRedisPrefix, openSse, readRequestBody, startGatewayStandin, uniqueRedisPrefix, type GatewayStandin, type SseClient } from '@iotsupport/testkit';
import { Forwarding, ForwardingConnectionRegistry, type ForwardingConfig } from '../src/index.js';

/**
 * An in-process fleet for forwarding tests: N "pods" (each a Forwarding with its own Redis
 * connections, metrics registry and a minimal gateway-callback handler) behind one callback
 * "load balancer", the testkit's SSE Gateway stand-in, real Redis. The real callback route is the
 * registry's (apps/api); this handler only does what forwarding needs: connect and disconnect.
 */
export interface Pod {
  id: string;
  forwarding: Forwarding;
  registry: ForwardingConnectionRegistry;
  metrics: Registry;
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
  config?: Partial<ForwardingConfig>;
  /** Delay the gateway's answer to sends whose token is in this set (a slow browser connection). */
  slowTokens?: Set<string>;
  slowDelayMs?: number;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}



export async function startFleet(t: Teardown, options: FleetOptions = {}): Promise<Fleet> {
  const prefix = uniqueRedisPrefix();
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
  // pod. Per-pod: /cb/<i> is pod i (its own gateway calls only it).
  const balancer = createServer((req, res) => {
    void readRequestBody(req).then(async (raw) => {
      const index = Number((req.url ?? '').split('/').pop());
      const pod = perPod ? pods[index] : randomPod();
      const body = JSON.parse(raw.toString('utf8')) as { action: string; token: string; request: { url: string } };
      if (!pod) return void res.writeHead(503).end();
      try {
        if (body.action === 'connect') {
          const requestId = new URL(body.request.url, 'http://x').searchParams.get('request_id') ?? '';
          await pod.registry.connect({
            requestId,
            token: body.token,
            url: body.request.url,
            subject: 'local-user',
            bindingExpiresAtMs: 0,
            receivedBy: pod.id,
            gateway: perPod ? gateways[index]!.url : fleet.sendUrl,
          });
        } else if (body.action === 'disconnect' && !pods.some((p) => p.ignoreDisconnectOf.has(body.token))) {
          await pod.registry.disconnect(body.token);
        }
      } catch {
        return void res.writeHead(503).end(); // this pod is down (partitioned)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const balancerPort = await listenOnLoopback(balancer);
  const gateways: GatewayStandin[] = [];
  // Slow tokens: the stand-in holds their sends back (a slow browser connection behind the gateway).
  const slow = options.slowTokens;
  const sendDelayMs = (token: string) => (slow?.has(token) ? (options.slowDelayMs ?? 200) : 0);
  for (let i = 0; i < (perPod ? podCount : 1); i++) gateways.push(await startGatewayStandin({ callbackUrl: `http://127.0.0.1:${balancerPort}/cb/${i}`, sendDelayMs }));
  const gateway = gateways[0]!;
  const clients: SseClient[] = [];

  const config: ForwardingConfig = {
    REDIS_KEY_PREFIX: prefix,
    POD_ID: 'pod',
    SSE_GATEWAY_URL: gateway.url,
    SSE_GATEWAY_TOPOLOGY: perPod ? 'per-pod' : 'shared',
    OWNERSHIP_LEASE_SECONDS: 2,
    CONNECTION_PROBE_INTERVAL_SECONDS: 60,
    GATEWAY_SEND_CONCURRENCY: 32,
    GATEWAY_SEND_TIMEOUT_MS: 1000,
    GATEWAY_SEND_RETRIES: 2,
    GATEWAY_CONNECTION_QUEUE_LIMIT: 500,
    GATEWAY_CONNECTION_QUEUE_BYTES: 4 * 1024 * 1024,
    ...options.config,
  };

  const fleet: Fleet = {
    prefix,
    gateway,
    gateways,
    sendUrl: config.SSE_GATEWAY_URL,
    pods,
    publisher,
    async open(requestId, gatewayIndex = 0) {
      const client = openSse(`${gateways[gatewayIndex]!.url}/events?request_id=${requestId}`, { timeoutMs: 10_000 });
      clients.push(client);
      await client.waitFor((m) => m.event === 'ready');
      return client;
    },
    async subscribe(requestId, deviceId, entityId, pod = randomPod()!) {
      const result = await pod.registry.subscribe({ requestId, deviceId, entityId, callerSubject: null });
      if (!result.ok) throw new Error(`subscribe ${requestId} ${entityId}: ${result.code}`);
    },
    async unsubscribe(requestId, deviceId, pod = randomPod()!) {
      const result = await pod.registry.unsubscribe({ requestId, deviceId, callerSubject: null });
      if (!result.ok) throw new Error(`unsubscribe ${requestId}: ${result.code}`);
    },
    async publishBatch(entityId, batchId, docs) {
      const now = Date.now();
      await publisher.publish(
        logChannelName(prefix, entityId),
        encodeLogChannelMessage({ v: 1, batch_id: batchId, device_entity_id: entityId, docs, received_at_ms: now, ingested_at_ms: now }),
      );
    },
    async startPod(id) {
      const redis = new Redis(LOCAL_REDIS_URL);
      const metrics = new Registry();
      const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', app: 'api', podId: id });
      const forwarding = new Forwarding({
        config: { ...config, POD_ID: id, SSE_GATEWAY_URL: perPod ? gateways[pods.length]!.url : config.SSE_GATEWAY_URL },
        redis,
        registry: metrics,
        logger,
        takeoverIntervalMs: 200,
        reconcileIntervalMs: 1000,
        orphanIntervalMs: 1000,
      });
      await forwarding.start();
      const pod: Pod = { id, forwarding, registry: new ForwardingConnectionRegistry(redis, prefix, forwarding), metrics, redis, ignoreDisconnectOf: new Set() };
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
    for (const pod of pods) {
      await pod.forwarding.close().catch(() => undefined);
      pod.redis.disconnect();
    }
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
