import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { Redis } from 'ioredis';
import { CONN_FIELDS, registryKeys } from '@iotsupport/realtime-state';
import { createNodeLiveClient, type LiveClient, type LiveClientEvents, type LiveLine } from '@iotsupport/live-client/node';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, eventually, freePort, purgeMqttSession, startElasticsearchStandin, startRealGateway, uniqueId } from '@iotsupport/testkit';
import { startProcessFleet, type ApiProcess, type ProcessFleet } from './process-fleet.js';

/**
 * The whole stack for the client module's end-to-end tests, every part a real process where a
 * test kills it: api pods (process-fleet), ingest (`apps/ingest/dist/src/main.js`), the SSE
 * Gateway stand-in (testkit CLI, restartable on its port), optionally a Redis server of the
 * test's own (`--save ''`: a restart comes back empty); PostgreSQL, Mosquitto and the
 * Elasticsearch stand-in as they are. Lines go in through MQTT like a device's.
 */
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const TESTKIT_CLI = here('../../../../packages/testkit/dist/src/cli.js');
const INGEST_MAIN = here('../../../ingest/dist/src/main.js');
/** Base URL the clients use for the api; the balancing fetch swaps it for a random live pod. */
const API_ALIAS = 'http://api.balanced';

interface Managed {
  child: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

/** Spawns a process and resolves once `ready` matches its output (or rejects when it exits first). */
async function spawnUntil(command: string, argv: string[], env: Record<string, string>, ready: RegExp): Promise<Managed> {
  const child = spawn(command, argv, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const managed = { child, exited, output: () => out };
  await eventually(() => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${argv.join(' ')} exited:\n${out}`);
    return ready.test(out);
  }, 20_000);
  return managed;
}

async function kill(process: Managed | undefined): Promise<void> {
  if (!process || process.child.exitCode !== null || process.child.signalCode !== null) return;
  process.child.kill('SIGKILL');
  await process.exited;
}

export interface LiveStackOptions {
  /** Log level of the api pods (default warn). */
  logLevel?: string;
  pods?: number;
  devices?: number;
  /** Run a Redis server of the test's own instead of the shared one. */
  ownRedis?: boolean;
  /** Extra environment of the api pods and ingest (e.g. LOG_STREAM_MAX_LINES). */
  env?: Record<string, string>;
  /**
   * The real SSE Gateway's entry point (pvginkel/SSEGateway built outside the repository,
   * `dist/index.js`) instead of the testkit stand-in. Default: TEST_SSE_GATEWAY_MAIN, so the
   * live-client tests can be run by hand against the real gateway (docs/testing.md); CI has no copy.
   */
  gatewayMain?: string;
}

export interface LiveStack {
  fleet: ProcessFleet;
  redisUrl: string;
  gatewayUrl: string;
  /** Pods that are alive now. */
  livePods(): ApiProcess[];
  /** The pod owning the most of these connections (the registry's `owner_pod`). */
  busiestOwner(requestIds: string[]): Promise<ApiProcess>;
  killGateway(): Promise<void>;
  startGateway(): Promise<void>;
  /** Kills the test's own Redis and starts it again, empty, on the same port. */
  restartRedisEmpty(): Promise<void>;
  /** A client module with a balancing fetch and short reconnect delays; watches nothing yet. */
  client(): LiveClient;
  /** Publishes one MQTT message of `lines` lines for device `device` (an index); lines carry `seq`. */
  publish(device: number, lines: number): Promise<void>;
  /** The seq numbers published so far for a device, in order. */
  published(device: number): number[];
  deviceId(device: number): number;
  entityId(device: number): string;
}

/** What the stack needs of a tap Test (a benchmark passes its own list). */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startLiveStack(t: Teardown, options: LiveStackOptions = {}): Promise<LiveStack> {
  const devices = options.devices ?? 10;
  let redisServer: Managed | undefined;
  let redisUrl = LOCAL_REDIS_URL;
  const redisPort = await freePort();
  const startRedis = async () => {
    redisServer = await spawnUntil('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {}, /Ready to accept connections/);
  };
  if (options.ownRedis) {
    await startRedis();
    redisUrl = `redis://127.0.0.1:${redisPort}`;
  }
  t.teardown(() => kill(redisServer));

  const fleet = await startProcessFleet(t, { pods: 0, devices, logLevel: options.logLevel ?? 'warn', env: { REDIS_URL: redisUrl, ...options.env } });
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  let gateway: Managed | undefined;
  const startGateway = async () => {
    const gatewayMain = options.gatewayMain ?? process.env.TEST_SSE_GATEWAY_MAIN;
    if (gatewayMain) {
      const real = await startRealGateway({ main: gatewayMain, port: gatewayPort, callbackUrl: fleet.callbackUrl });
      const exited = new Promise<void>((resolve) => (real.child.exitCode !== null ? resolve() : real.child.once('exit', () => resolve())));
      gateway = { child: real.child, exited, output: real.log };
      t.teardown(() => real.stop());
    } else {
      gateway = await spawnUntil(process.execPath, [TESTKIT_CLI, 'gateway', '--port', String(gatewayPort), '--callback-url', fleet.callbackUrl], {}, /listening/);
    }
  };
  await startGateway();
  t.teardown(() => kill(gateway));

  for (let i = 0; i < (options.pods ?? 3); i++) await fleet.startPod(`live-${i}`, { SSE_GATEWAY_URL: gatewayUrl });

  const es = await startElasticsearchStandin();
  t.teardown(() => es.stop());
  const ingestClientId = uniqueId('live-ingest');
  const ingest = await spawnUntil(
    process.execPath,
    [INGEST_MAIN],
    {
      MQTT_URL: LOCAL_MQTT_URL,
      MQTT_CLIENT_ID: ingestClientId,
      MQTT_TOPIC_PREFIX: fleet.topicPrefix,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: fleet.prefix,
      ELASTICSEARCH_URL: es.url,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      INGEST_RETRY_MAX_DELAY_MS: '200',
      ...options.env,
    },
    /"mqtt connected"/,
  );
  t.teardown(async () => {
    await kill(ingest);
    await purgeMqttSession(ingestClientId);
  });

  const publisher = await mqtt.connectAsync(LOCAL_MQTT_URL, { clientId: uniqueId('live-pub'), protocolVersion: 5 });
  let ended = false; // a failed test's flow may still be publishing when the teardown runs
  t.teardown(() => {
    ended = true;
    return publisher.endAsync().catch(() => undefined);
  });
  const topic = `${fleet.topicPrefix}iotsupport/logsink`;
  const sequences = Array.from({ length: devices }, () => [] as number[]);
  let seq = 0;

  const clients: LiveClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const balancedFetch = (url: string, init: Parameters<typeof fetch>[1]) => {
    const pods = fleet.pods.filter((p) => p.alive);
    const pod = pods[Math.floor(Math.random() * pods.length)];
    return fetch(url.replace(API_ALIAS, `http://127.0.0.1:${pod?.port ?? 1}`), init);
  };
  const ownRedis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  t.teardown(() => ownRedis.disconnect());

  const entityId = (device: number) => `sensor.e${device}`;
  return {
    fleet,
    redisUrl,
    gatewayUrl,
    livePods: () => fleet.pods.filter((p) => p.alive),
    async busiestOwner(requestIds) {
      const counts = new Map<string, number>();
      for (const rid of requestIds) {
        const owner = await ownRedis.hget(registryKeys(fleet.prefix).connection(rid), CONN_FIELDS.ownerPod);
        if (owner) counts.set(owner, (counts.get(owner) ?? 0) + 1);
      }
      const [best] = [...counts].sort((a, b) => b[1] - a[1]);
      const pod = fleet.pods.find((p) => p.alive && p.id === best?.[0]);
      if (!pod) throw new Error(`no live owner among ${JSON.stringify([...counts])}`);
      return pod;
    },
    async killGateway() {
      await kill(gateway);
    },
    startGateway,
    async restartRedisEmpty() {
      if (!redisServer) throw new Error('restartRedisEmpty needs ownRedis');
      await kill(redisServer);
      await startRedis();
    },
    client() {
      const client = createNodeLiveClient({ gatewayUrl, apiUrl: API_ALIAS, fetch: balancedFetch, reconnectDelayMs: { min: 200, max: 1_000 } });
      clients.push(client);
      return client;
    },
    async publish(device, lines) {
      if (ended) return;
      const payload: string[] = [];
      for (let l = 0; l < lines; l++) {
        sequences[device]!.push(++seq);
        payload.push(JSON.stringify({ entity_id: entityId(device), seq, message: `line ${seq} of ${entityId(device)}` }));
      }
      await publisher.publishAsync(topic, payload.join('\n'), { qos: 1 });
    },
    published: (device) => sequences[device]!,
    deviceId: (device) => fleet.devices.get(entityId(device))!,
    entityId,
  };
}

/** Every line a client showed, per entity id: the `seq` of each, in order. */
export function recordLines(client: LiveClient): Map<string, number[]> {
  const shown = new Map<string, number[]>();
  client.on('lines', ({ deviceEntityId, lines }) => {
    let list = shown.get(deviceEntityId);
    if (!list) shown.set(deviceEntityId, (list = []));
    for (const line of lines as LiveLine[]) list.push(line.doc.seq as number);
  });
  return shown;
}

/** Publishes `linesPerSecond` for `seconds` in messages of `linesPerMessage`, devices round robin. */
export async function publishFor(stack: LiveStack, devices: number, linesPerSecond: number, seconds: number, linesPerMessage = 10): Promise<void> {
  const messages = Math.round((linesPerSecond * seconds) / linesPerMessage);
  const start = Date.now();
  for (let k = 0; k < messages; k++) {
    const due = start + (k * linesPerMessage * 1000) / linesPerSecond;
    const wait = due - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    await stack.publish(k % devices, linesPerMessage);
  }
}

/** How the lines a client showed differ from the ones published: all zero when each came once, in order. */
export function deliveryReport(shown: number[], published: number[]) {
  const wanted = new Set(published);
  const seen = new Set<number>();
  let repeated = 0;
  let unexpected = 0;
  for (const seq of shown) {
    if (seen.has(seq)) repeated++;
    else if (!wanted.has(seq)) unexpected++;
    seen.add(seq);
  }
  const missing = published.filter((seq) => !seen.has(seq));
  const inOrder = shown.filter((seq, k) => k > 0 && seq < shown[k - 1]!).length === 0;
  return { missing: missing.length, repeated, unexpected, inOrder, firstMissing: missing.slice(0, 5) };
}

export const PERFECT_DELIVERY = { missing: 0, repeated: 0, unexpected: 0, inOrder: true, firstMissing: [] };

export interface TakeoverRun {
  /** POD_ID of the pod killed. */
  killed: string;
  published: number;
  /** Per client, how what it showed differs from what was published for its device. */
  reports: Array<{ requestId: string } & ReturnType<typeof deliveryReport>>;
  /** Repeats the clients received and dropped (before the module's dedupe they were shown twice). */
  duplicates: number;
  /** Per client, the longest pause between two `lines` events after the kill (ms), sorted. */
  pauses: number[];
  /** What the clients were told, all together: lines skipped, events the server dropped, resumes not recovered. */
  notices: { gaps: number; missingInGaps: number; droppedEvents: number; unrecovered: number; resets: number };
}

/**
 * `connections` clients over `devices` devices (round robin); lines flow at `rate` lines/s for
 * `seconds`; once ~`killAfterSeconds` of lines reached every client, the pod owning the most of
 * them is killed with SIGKILL. Waits (up to `settleMs`) for every line to arrive, then reports.
 */
export async function runTakeover(
  stack: LiveStack,
  { connections, devices, rate, seconds, killAfterSeconds = 2, settleMs = 45_000 }: { connections: number; devices: number; rate: number; seconds: number; killAfterSeconds?: number; settleMs?: number },
): Promise<TakeoverRun> {
  const clients: LiveClient[] = [];
  const shown: Array<Map<string, number[]>> = [];
  const longestPause: number[] = [];
  let killedAt = Number.POSITIVE_INFINITY;
  const notices = { gaps: 0, missingInGaps: 0, droppedEvents: 0, unrecovered: 0, resets: 0 };
  for (let i = 0; i < connections; i++) {
    const client = stack.client();
    clients.push(client);
    shown.push(recordLines(client));
    client.on('gap', ({ missing }) => {
      notices.gaps += 1;
      notices.missingInGaps += missing;
    });
    client.on('dropped', ({ dropped }) => (notices.droppedEvents += dropped));
    client.on('unrecovered', () => (notices.unrecovered += 1));
    client.on('reset', () => (notices.resets += 1));
    let previous = 0;
    longestPause.push(0);
    client.on('lines', () => {
      const now = Date.now();
      if (now > killedAt) longestPause[i] = Math.max(longestPause[i]!, now - Math.max(previous, killedAt));
      previous = now;
    });
  }
  await Promise.all(clients.map((c, i) => c.watch(stack.deviceId(i % devices))));

  const flow = publishFor(stack, devices, rate, seconds);
  flow.catch(() => undefined); // awaited below; a failure before that must not go unhandled
  const linesOf = (i: number) => shown[i]!.get(stack.entityId(i % devices)) ?? [];
  const totalShown = () => clients.reduce((sum, _, i) => sum + linesOf(i).length, 0);
  const beforeKill = rate * killAfterSeconds * (connections / devices);
  await eventually(() => totalShown() >= beforeKill, 30_000).catch((err: unknown) => {
    throw new Error(`${totalShown()} of ${beforeKill} line deliveries before the kill: ${String(err)}`);
  });
  const owner = await stack.busiestOwner(clients.map((c) => c.requestId));
  killedAt = Date.now();
  owner.child.kill('SIGKILL');
  await owner.exited;
  await flow;

  const complete = () => clients.every((_, i) => linesOf(i).length >= stack.published(i % devices).length);
  await eventually(complete, settleMs).catch(() => undefined); // the reports say what is missing
  return {
    killed: owner.id,
    published: rate * seconds,
    reports: clients.map((c, i) => ({ requestId: c.requestId, ...deliveryReport(linesOf(i), stack.published(i % devices)) })),
    duplicates: clients.reduce((sum, c) => sum + c.stats.duplicatesDropped, 0),
    pauses: [...longestPause].sort((a, b) => a - b),
    notices,
  };
}

/** `count` clients watching devices 0..devices-1 round robin, with what each showed and told. */
export async function watchRoundRobin(stack: LiveStack, devices: number, count: number) {
  const clients: LiveClient[] = [];
  const shown: Array<Map<string, number[]>> = [];
  const told: Array<{ unrecovered: LiveClientEvents['unrecovered'][]; reset: LiveClientEvents['reset'][]; states: string[] }> = [];
  for (let i = 0; i < count; i++) {
    const client = stack.client();
    clients.push(client);
    shown.push(recordLines(client));
    const record = { unrecovered: [] as LiveClientEvents['unrecovered'][], reset: [] as LiveClientEvents['reset'][], states: [] as string[] };
    client.on('unrecovered', (e) => record.unrecovered.push(e));
    client.on('reset', (e) => record.reset.push(e));
    client.on('state', (e) => record.states.push(e.state));
    told.push(record);
  }
  await Promise.all(clients.map((c, i) => c.watch(stack.deviceId(i % devices))));
  const linesOf = (i: number) => shown[i]!.get(stack.entityId(i % devices)) ?? [];
  const allShown = () => clients.every((_, i) => linesOf(i).length >= stack.published(i % devices).length);
  return { clients, told, linesOf, allShown };
}
