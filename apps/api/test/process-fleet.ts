import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { encodeLogChannelMessage, logChannelName } from '@iotsupport/contracts';
import { createDb, DeviceModelRepository, DeviceRepository, migrateToLatest } from '@iotsupport/db';
import { registryKeys } from '@iotsupport/realtime-state';
import {
  LOCAL_MQTT_URL,
  LOCAL_REDIS_URL,
  createTestDatabase,
  freePort,
  isAddressInUse,
  listeningUrls,
  listenOnLoopback,
  metricSample,
  openSse,
  startGatewayStandin,
  isolatedRedisPrefix,
  uniqueId,
  uniqueTopicPrefix,
  type GatewayStandin,
  type SseClient,
  readRequestBody,
} from '@iotsupport/testkit';

/**
 * A real fleet for forwarding's must-show tests and benchmarks: api pods as separate processes
 * (`node apps/api/dist/src/main.js`, own ports, one shared Redis prefix and database), the SSE
 * Gateway stand-in whose callbacks a balancer hands to a random live pod; the stand-in answers
 * `/internal/send` slowly for chosen tokens (a slow browser).
 */
export const CALLBACK_SECRET = 'fleet-secret';
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface ApiProcess {
  /** Its POD_ID: the name given to `startPod` made unique per run (the api's MQTT client id derives from it). */
  id: string;
  port: number;
  internalPort: number;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive: boolean;
  /** The last lines it logged (for failure messages). */
  log: string[];
}

export interface ProcessFleet {
  prefix: string;
  /** MQTT_TOPIC_PREFIX of the pods (an ingest for the same fleet uses it too). */
  topicPrefix: string;
  /** The gateway's CALLBACK_URL (the balancer), for a gateway run outside the fleet (benchmarks). */
  callbackUrl: string;
  gateway: GatewayStandin;
  /** Tokens whose `/internal/send` the gateway stand-in holds back by `slowDelayMs`. */
  slowTokens: Set<string>;
  /** Tokens whose disconnect callback never reaches a pod (the balancer answers it itself). */
  lostCallbacks: Set<string>;
  pods: ApiProcess[];
  redis: Redis;
  /** entity id → device id; `sensor.e0` … `sensor.e<devices-1>`. */
  devices: Map<string, number>;
  /** `nodeArgs` go before the script (e.g. `--cpu-prof`). */
  startPod(id: string, env?: Record<string, string>, nodeArgs?: string[]): Promise<ApiProcess>;
  open(requestId: string): Promise<SseClient>;
  tokenOf(requestId: string): string;
  /** The token the registry holds for a request_id (works with any gateway). */
  storedToken(requestId: string): Promise<string | null>;
  /** POST /api/device-logs/<op> on a pod (a random live one by default). */
  deviceLogs(op: 'subscribe' | 'unsubscribe', requestId: string, entityId: string, pod?: ApiProcess): Promise<{ status: number; body: unknown }>;
  publishBatch(entityId: string, batchId: string, docs: Record<string, unknown>[]): Promise<void>;
  post(pod: ApiProcess, internal: boolean, path: string, body?: string, contentType?: string): Promise<{ status: number; body: string }>;
  metrics(pod: ApiProcess): Promise<string>;
  randomPod(): ApiProcess;
}

export interface ProcessFleetOptions {
  pods?: number;
  /** Devices with entity ids `sensor.e<i>` (default 6). */
  devices?: number;
  /** Pods' stdout+stderr log level (default info). */
  logLevel?: string;
  env?: Record<string, string>;
  slowDelayMs?: number;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}



function forward(url: string, method: string, body: Buffer | string, contentType: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(url, { method, headers: { 'content-type': contentType } }, (res) => {
      void readRequestBody(res).then((b) => resolve({ status: res.statusCode ?? 0, body: b.toString('utf8') }), reject);
    });
    out.on('error', reject);
    out.end(body);
  });
}

/** Reads one sample of a Prometheus text exposition (summing every series whose labels match). */
export const sample = metricSample;

/** Log levels at which the api logs fastify's `Server listening at …` (its address when started on port 0). */
const ADDRESS_LOGGED = new Set(['trace', 'debug', 'info']);

export async function startProcessFleet(t: Teardown, options: ProcessFleetOptions = {}): Promise<ProcessFleet> {
  const prefix = isolatedRedisPrefix(t);
  const topicPrefix = uniqueTopicPrefix();
  const pods: ApiProcess[] = [];
  const live = () => pods.filter((p) => p.alive);
  const randomPod = () => {
    const candidates = live();
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  };

  // CALLBACK_URL: a balancer in front of the pods' internal listeners (a random live pod each time).
  const lostCallbacks = new Set<string>();
  const balancer = createServer((req, res) => {
    void readRequestBody(req).then(async (body) => {
      const callback = JSON.parse(body.toString('utf8')) as { action?: string; token?: string };
      if (callback.action === 'disconnect' && lostCallbacks.has(callback.token ?? '')) return void res.writeHead(200).end('{}');
      for (let attempt = 0; attempt < 3; attempt++) {
        const pod = randomPod();
        if (!pod) break;
        try {
          const answer = await forward(`http://127.0.0.1:${pod.internalPort}${req.url ?? '/'}`, 'POST', body, 'application/json');
          return void res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
        } catch {
          // that pod just died: try another
        }
      }
      res.writeHead(503).end();
    });
  });
  const balancerPort = await listenOnLoopback(balancer);
  const callbackUrl = `http://127.0.0.1:${balancerPort}/api/sse/callback?secret=${CALLBACK_SECRET}`;
  // Slow tokens: the stand-in holds their sends back (a slow browser connection behind the gateway).
  const slowTokens = new Set<string>();
  const gateway = await startGatewayStandin({ callbackUrl, sendDelayMs: (token) => (slowTokens.has(token) ? (options.slowDelayMs ?? 300) : 0) });


  const testDb = await createTestDatabase();
  const admin = createDb(testDb.url);
  await migrateToLatest(admin.db);
  const model = await new DeviceModelRepository(admin.db).create({ code: 'fwd', name: 'Forwarding test model' });
  const repo = new DeviceRepository(admin.db);
  const devices = new Map<string, number>();
  for (let i = 0; i < (options.devices ?? 6); i++) {
    const device = await repo.create({ key: `fwd${String(i).padStart(5, '0')}`, device_model_id: model.id, config: { deviceEntityId: `sensor.e${i}` } });
    devices.set(`sensor.e${i}`, device.id);
  }
  const redis = new Redis(LOCAL_REDIS_URL);
  const clients: SseClient[] = [];

  /**
   * Starts one pod. At a log level that reports addresses it listens on port 0 and the ports are
   * read from its log (nothing can take them in between); otherwise (benchmarks run at warn) it
   * gets ports that were free a moment ago and is started again if one was taken meanwhile.
   */
  async function startPod(name: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ApiProcess> {
    const logLevel = env.LOG_LEVEL ?? options.env?.LOG_LEVEL ?? options.logLevel ?? 'info';
    const portZero = ADDRESS_LOGGED.has(logLevel);
    // Unique per run: parallel test files each start "pod-0", and one MQTT client id for two
    // processes means broker session takeovers (flapping readiness, QoS 1 notices resent).
    const id = uniqueId(name);
    for (let attempt = 1; ; attempt++) {
      const pod = spawnPod(id, portZero ? [0, 0] : [await freePort(), await freePort()], logLevel, env, nodeArgs);
      pods.push(pod);
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (pod.port !== 0 && pod.internalPort !== 0) {
          const ready = await forward(`http://127.0.0.1:${pod.internalPort}/health/readyz`, 'GET', '', 'text/plain').catch(() => ({ status: 0, body: '' }));
          if (ready.status === 200) return pod;
        }
        if (!pod.alive || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!pod.alive) await pod.exited; // all of its output is in
      if (!portZero && !pod.alive && isAddressInUse(pod.log.join('\n')) && attempt < 5) {
        pods.splice(pods.indexOf(pod), 1); // a port was taken between freePort() and its listen: again
        continue;
      }
      throw new Error(`api ${id} did not become ready:\n${pod.log.slice(-20).join('\n')}`);
    }
  }

  function spawnPod(id: string, [port, internalPort]: [number, number], logLevel: string, env: Record<string, string>, nodeArgs: string[]): ApiProcess {
    const child = spawn(process.execPath, [...nodeArgs, MAIN], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        REDIS_URL: LOCAL_REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        DATABASE_URL: testDb.url,
        MQTT_URL: LOCAL_MQTT_URL,
        MQTT_TOPIC_PREFIX: topicPrefix,
        SSE_GATEWAY_URL: gateway.url,
        SSE_CALLBACK_SECRET: CALLBACK_SECRET,
        SHUTDOWN_DRAIN_SECONDS: '0',
        GRACEFUL_SHUTDOWN_TIMEOUT: '15',
        ...options.env,
        ...env,
        LOG_LEVEL: logLevel,
        PORT: String(port),
        INTERNAL_PORT: String(internalPort),
        POD_ID: id,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pod: ApiProcess = { id, port, internalPort, child, alive: true, log: [], exited: undefined as never };
    // Whole lines (a chunk can end mid-line); with port 0 the listeners' addresses come from them.
    let closedStreams = 0;
    let allOutput!: () => void;
    const outputDone = new Promise<void>((resolve) => (allOutput = resolve));
    for (const stream of [child.stdout!, child.stderr!]) {
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      lines.on('line', (line) => {
        if (!line) return;
        pod.log.push(line);
        if (pod.log.length > 200) pod.log.splice(0, pod.log.length - 200);
        if (port === 0 || internalPort === 0) {
          const urls = listeningUrls(line);
          if (urls.public) pod.port = Number(new URL(urls.public).port);
          if (urls.internal) pod.internalPort = Number(new URL(urls.internal).port);
        }
      });
      lines.once('close', () => ++closedStreams === 2 && allOutput());
    }
    pod.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        pod.alive = false;
        void outputDone.then(() => resolve({ code, signal }));
      }),
    );
    return pod;
  }

  // Registered before the pods start, so a pod that never becomes ready is still killed and
  // nothing is left behind; the prefix's keys go after that (isolatedRedisPrefix, registered first).
  t.teardown(async () => {
    for (const c of clients) c.close();
    for (const pod of pods.filter((p) => p.alive)) pod.child.kill('SIGKILL');
    await Promise.all(pods.map((p) => p.exited));
    await gateway.stop();
    balancer.closeAllConnections();
    balancer.close();
    await admin.close();
    await testDb.drop();
    redis.disconnect();
  });
  for (let i = 0; i < (options.pods ?? 3); i++) await startPod(`pod-${i}`);


  return {
    prefix,
    topicPrefix,
    callbackUrl,
    gateway,
    slowTokens,
    lostCallbacks,
    pods,
    redis,
    devices,
    startPod,
    randomPod,
    async open(requestId) {
      const client = openSse(`${gateway.url}/events?request_id=${requestId}`, { timeoutMs: 15_000 });
      clients.push(client);
      await client.waitFor((m) => m.event === 'ready');
      return client;
    },
    storedToken(requestId) {
      return redis.hget(registryKeys(prefix).connection(requestId), 'token');
    },
    tokenOf(requestId) {
      const conn = gateway.connections().find((c) => c.url === `/events?request_id=${requestId}`);
      if (!conn) throw new Error(`no stream for ${requestId}`);
      return conn.token;
    },
    async deviceLogs(op, requestId, entityId, pod = randomPod()) {
      const body = JSON.stringify({ request_id: requestId, device_id: devices.get(entityId) });
      const answer = await forward(`http://127.0.0.1:${pod.port}/api/device-logs/${op}`, 'POST', body, 'application/json');
      return { status: answer.status, body: JSON.parse(answer.body) as unknown };
    },
    async publishBatch(entityId, batchId, docs) {
      const now = Date.now();
      const message = encodeLogChannelMessage({ v: 1, batch_id: batchId, device_entity_id: entityId, docs, received_at_ms: now, ingested_at_ms: now });
      await redis.publish(logChannelName(prefix, entityId), message);
    },
    post(pod, internal, path, body = '', contentType = 'application/json') {
      return forward(`http://127.0.0.1:${internal ? pod.internalPort : pod.port}${path}`, 'POST', body, contentType);
    },
    async metrics(pod) {
      return (await forward(`http://127.0.0.1:${pod.internalPort}/metrics`, 'GET', '', 'text/plain')).body;
    },
  };
}

/** device-logs payloads a stream received, in order. */
export function deviceLogPayloads(client: SseClient): Array<{ device_entity_id: string; logs: Array<Record<string, unknown>>; dropped?: number }> {
  return client
    .envelopes()
    .filter((e) => e.type === 'device-logs')
    .map((e) => e.payload as { device_entity_id: string; logs: Array<Record<string, unknown>>; dropped?: number });
}
