/**
 * Live forwarding, end to end (`make bench`, or `node bench/dist/forward/forward-bench.js` after
 * `make build`; flags below). Everything runs as its own process, as in production: 2 api pods
 * (`apps/api/dist/src/main.js`), `apps/ingest`, the SSE Gateway stand-in and the Elasticsearch
 * stand-in (testkit CLI), a private Mosquitto; the bench process holds the 100 SSE clients, the
 * MQTT publisher and the Redis publisher. Prints numbers, asserts nothing.
 *
 * 1. latency: MQTT publish → ingest → Elasticsearch → Redis → api pod → gateway → bytes at the SSE
 *    client, at --rate lines/s (messages of --lines lines, entities round robin) for --seconds;
 *    every connection watches one of --entities entities. p50/p99 over every line received.
 * 2. gateway raw: the gateway's own `/internal/send` rate (raw-sender.js, its own process, a
 *    keep-alive pool with as many requests in flight as the pods together may have).
 * 3. forwarded max: ingest-shaped batches published straight on the log channels (ingest is not the
 *    subject here), a window of batches in flight, events/s the pods get through to the clients.
 * Ratio = forwarded max / gateway raw.
 * `--gateway-main PATH`: the real SSE Gateway (pvginkel/SSEGateway built outside the repository,
 * its `dist/index.js`) instead of the stand-in, for all three phases.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { Redis } from 'ioredis';
import { encodeLogChannelMessage, logChannelName } from '@iotsupport/contracts';
import { LOCAL_REDIS_URL, freePort, metricSample, startRealGateway, uniqueId } from '@iotsupport/testkit';
import type { ProcessFleet } from '../../apps/api/dist/test/process-fleet.js';
import { startPrivateBroker } from '../ingest/private-broker.js';
import { openStampedStream, type StampedStream } from './stamped-stream.js';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '100' },
    pods: { type: 'string', default: '2' },
    entities: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    lines: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    'max-seconds': { type: 'string', default: '10' },
    window: { type: 'string', default: '64' },
    'cpu-prof-dir': { type: 'string' },
    // The real SSE Gateway (pvginkel/SSEGateway, built outside the repository): its dist/index.js.
    'gateway-main': { type: 'string' },
  },
});
const CONNECTIONS = Number(args.connections);
const PODS = Number(args.pods);
const ENTITIES = Number(args.entities);
const RATE = Number(args.rate);
const LINES = Number(args.lines);
const SECONDS = Number(args.seconds);
const CONCURRENCY = 64; // GATEWAY_SEND_CONCURRENCY's default, per pod

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const TESTKIT_CLI = here('../../../packages/testkit/dist/src/cli.js');
const INGEST_MAIN = here('../../../apps/ingest/dist/src/main.js');
const RAW_SENDER = here('./raw-sender.js');
const now = () => performance.timeOrigin + performance.now();
// The api's process fleet (apps/api/test/process-fleet.ts) starts the pods; its compiled module sits
// three levels up from bench/dist/forward (a static import would be resolved from the source tree).
type FleetModule = typeof import('../../apps/api/dist/test/process-fleet.js');
const { startProcessFleet } = (await import(here('../../../apps/api/dist/test/process-fleet.js'))) as FleetModule;

function spawnLogged(file: string, argv: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [file, ...argv], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  child.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready.test(out)) {
        clearInterval(timer);
        resolve({ child, output: () => out });
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`${file} exited:\n${out}`));
      }
    }, 20);
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Tally {
  /** Lines published before this (epoch ms) are warm-up: not counted. */
  measureFrom: number;
  warmupLines: number;
  latencies: number[];
  maxDelivered: number;
  perBatch: Map<number, number>;
}

/** Counts one event a client received (the gateway's envelope around our device-logs payload). */
function tallyEvent(data: string, arrived: number, tally: Tally, onBatchDone: () => void, watchers: number): void {
  const envelope = JSON.parse(data) as { type: string; payload: { logs?: Array<{ t?: number; phase?: string; b?: number }> } };
  if (envelope.type !== 'device-logs') return;
  const logs = envelope.payload.logs ?? [];
  if (logs[0]?.phase === 'lat') {
    for (const line of logs) {
      if (line.t! < tally.measureFrom) tally.warmupLines += 1;
      else tally.latencies.push(arrived - line.t!);
    }
  } else if (logs[0]?.phase === 'max') {
    tally.maxDelivered += 1;
    const b = logs[0].b!;
    const n = (tally.perBatch.get(b) ?? 0) + 1;
    if (n === watchers) {
      tally.perBatch.delete(b);
      onBatchDone();
    } else tally.perBatch.set(b, n);
  }
}

const teardown: Array<() => unknown> = [];
const broker = await startPrivateBroker();
teardown.push(() => broker.stop());
try {
  const fleet: ProcessFleet = await startProcessFleet(
    { teardown: (fn) => teardown.push(fn) },
    { pods: 0, devices: ENTITIES, logLevel: 'warn', env: { MQTT_URL: broker.url } },
  );
  const gwPort = await freePort();
  const gatewayMain = args['gateway-main'];
  if (gatewayMain) {
    const real = await startRealGateway({ main: gatewayMain, port: gwPort, callbackUrl: fleet.callbackUrl });
    teardown.push(() => real.stop());
  } else {
    const standin = await spawnLogged(TESTKIT_CLI, ['gateway', '--port', String(gwPort), '--callback-url', fleet.callbackUrl], {}, /listening/);
    teardown.push(() => stop(standin.child));
  }
  const gatewayUrl = `http://127.0.0.1:${gwPort}`;
  // --cpu-prof-dir DIR: each api pod writes a V8 CPU profile there when it stops (SIGTERM at the end).
  const profile = args['cpu-prof-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof-dir']}`] : [];
  for (let i = 0; i < PODS; i++) await fleet.startPod(`bench-pod-${i}`, { SSE_GATEWAY_URL: gatewayUrl }, profile);

  const esPort = await freePort();
  const es = await spawnLogged(TESTKIT_CLI, ['es', '--port', String(esPort)], {}, /listening/);
  teardown.push(() => stop(es.child));
  const ingest = await spawnLogged(
    INGEST_MAIN,
    [],
    {
      MQTT_URL: broker.url,
      MQTT_CLIENT_ID: uniqueId('bench-ingest'),
      MQTT_TOPIC_PREFIX: fleet.topicPrefix,
      REDIS_URL: LOCAL_REDIS_URL,
      REDIS_KEY_PREFIX: fleet.prefix,
      ELASTICSEARCH_URL: `http://127.0.0.1:${esPort}`,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    },
    /"mqtt connected"/,
  );
  teardown.push(() => stop(ingest.child));

  // --- connections: each watches one entity, subscribed through a random pod ---------------------
  const tally: Tally = { measureFrom: Number.POSITIVE_INFINITY, warmupLines: 0, latencies: [], maxDelivered: 0, perBatch: new Map() };
  let inFlight = 0;
  /** Wakes phase 3 when a batch reached every watcher (room in the window again). */
  let wakeWindow: (() => void) | undefined;
  const batchDone = () => {
    inFlight -= 1;
    wakeWindow?.();
  };
  const watchersPerEntity = CONNECTIONS / ENTITIES;
  const clients: StampedStream[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const client = openStampedStream(`${gatewayUrl}/events?request_id=bench${i}`, (data, arrived) => tallyEvent(data, arrived, tally, batchDone, watchersPerEntity));
    await client.ready;
    clients.push(client);
    const answer = await fleet.deviceLogs('subscribe', `bench${i}`, `sensor.e${i % ENTITIES}`);
    if (answer.status !== 200) throw new Error(`subscribe failed: ${JSON.stringify(answer)}`);
  }
  teardown.push(() => clients.forEach((c) => c.close()));
  console.log(`forwarding benchmark: ${CONNECTIONS} SSE connections on ${PODS} api pods (${watchersPerEntity} per entity, ${ENTITIES} entities), ${gatewayMain ? `the real SSE Gateway (${gatewayMain})` : 'the gateway stand-in'}, the ES stand-in and ingest as processes`);

  // --- 1. latency at RATE lines/s through MQTT and ingest ----------------------------------------
  const pub = await mqtt.connectAsync(broker.url, { clientId: uniqueId('bench-pub'), protocolVersion: 5 });
  const topic = `${fleet.topicPrefix}iotsupport/logsink`;
  const messagesPerSecond = RATE / LINES;
  const WARMUP = Number(args.warmup);
  const total = Math.round(messagesPerSecond * (SECONDS + WARMUP));
  const start = now();
  tally.measureFrom = start + WARMUP * 1000;
  for (let k = 0; k < total; k++) {
    const due = start + (k * 1000) / messagesPerSecond;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const entity = `sensor.e${k % ENTITIES}`;
    const t = now();
    const payload = Array.from({ length: LINES }, (_, l) => JSON.stringify({ entity_id: entity, phase: 'lat', t, k, l, message: `bench line ${k}.${l}` })).join('\n');
    void pub.publishAsync(topic, payload, { qos: 1 });
  }
  const expected = total * LINES * watchersPerEntity;
  const settle = now();
  while (tally.latencies.length + tally.warmupLines < expected && now() - settle < 30_000) await new Promise((r) => setTimeout(r, 50));
  await pub.endAsync();
  const sorted = [...tally.latencies].sort((a, b) => a - b);

  // --- 2. the gateway stand-in's own rate --------------------------------------------------------
  const tokens = await Promise.all(clients.map((_, i) => fleet.storedToken(`bench${i}`)));
  const raw = await new Promise<{ sent: number; seconds: number; errors: number }>((resolve, reject) => {
    const child = spawn(process.execPath, [RAW_SENDER, gatewayUrl, args['max-seconds']!, String(CONCURRENCY * PODS), ...(tokens as string[])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', () => {
      try {
        resolve(JSON.parse(out) as { sent: number; seconds: number; errors: number });
      } catch (err) {
        reject(err as Error);
      }
    });
  });
  const rawRate = raw.sent / raw.seconds;

  // --- 3. the highest forwarded rate ---------------------------------------------------------------
  const publisher = new Redis(LOCAL_REDIS_URL);
  teardown.push(() => publisher.disconnect());
  const windowSize = Number(args.window);
  const maxSeconds = Number(args['max-seconds']);
  let b = 0;
  const maxStart = now();
  const deliveredBefore = tally.maxDelivered;
  let phaseOver = false;
  const deadline = setTimeout(() => {
    phaseOver = true;
    wakeWindow?.();
  }, maxSeconds * 1000);
  while (!phaseOver) {
    while (inFlight < windowSize) {
      const entity = `sensor.e${b % ENTITIES}`;
      const at = Date.now();
      inFlight += 1;
      void publisher.publish(
        logChannelName(fleet.prefix, entity),
        encodeLogChannelMessage({ v: 1, batch_id: `max-${b}`, device_entity_id: entity, docs: [{ entity_id: entity, phase: 'max', b, message: 'max rate' }], received_at_ms: at, ingested_at_ms: at }),
      );
      b += 1;
    }
    // Sleep until a batch completes or the deadline: polling (setImmediate) would keep a core of a
    // 2-core machine busy during the measurement and bias the forwarded rate low.
    await new Promise<void>((resolve) => {
      wakeWindow = resolve;
    });
    wakeWindow = undefined;
  }
  clearTimeout(deadline);
  const forwardedRate = (tally.maxDelivered - deliveredBefore) / ((now() - maxStart) / 1000);

  const metrics = await Promise.all(fleet.pods.map((p) => fleet.metrics(p)));
  const dropped = metrics.reduce((n, text) => n + metricSample(text, 'sse_gateway_events_dropped_total'), 0);

  const f = (n: number) => Math.round(n).toLocaleString('en');
  console.log(`1. MQTT publish -> bytes at the SSE client, ${RATE} lines/s for ${SECONDS} s after ${WARMUP} s of warm-up (${f(expected)} line deliveries expected, ${f(sorted.length + tally.warmupLines)} received)`);
  console.log(`   latency ms: p50 ${percentile(sorted, 50).toFixed(1)}  p99 ${percentile(sorted, 99).toFixed(1)}  max ${(sorted.at(-1) ?? NaN).toFixed(1)}`);
  console.log(`2. gateway raw /internal/send: ${f(rawRate)} events/s (${CONCURRENCY * PODS} in flight, ${raw.errors} errors)`);
  console.log(`3. forwarded through ${PODS} pods (Redis batch -> SSE client): ${f(forwardedRate)} events/s (window ${windowSize} batches x ${watchersPerEntity} connections)`);
  console.log(`   ratio forwarded / raw: ${(forwardedRate / rawRate).toFixed(2)}`);
  console.log(`   events dropped by the pods during the run: ${dropped}`);
  if (args['cpu-prof-dir']) {
    for (const pod of fleet.pods) pod.child.kill('SIGTERM');
    await Promise.all(fleet.pods.map((p) => p.exited));
  }
} finally {
  for (const fn of teardown.reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error('teardown:', (err as Error).message);
    }
  }
}
process.exit(0);
