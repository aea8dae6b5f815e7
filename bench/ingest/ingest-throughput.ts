/**
 * Ingest throughput next to the broker's own QoS 1 rate, measured in one run (`make bench`, or
 * `node bench/dist/ingest/ingest-throughput.js [--messages N] [--lines L]` after `make build`).
 *
 * 1. raw:    publisher → private Mosquitto → a QoS 1 subscriber that does nothing.
 * 2. ingest: publisher → private Mosquitto → `node apps/ingest/dist/src/main.js` → Elasticsearch
 *            stand-in + Redis fan-out; done when every line is stored and streamed.
 * Prints lines/s of both and the ratio. Asserts nothing. `--cpu-prof-dir DIR` profiles ingest.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { Redis } from 'ioredis';
import { decodeLogChannelMessage, logChannelPattern } from '@iotsupport/contracts';
import { dailyIndexName, documentId, payloadDigest } from '@iotsupport/log-ingest';
import { LOCAL_REDIS_URL, deleteRedisPrefix, eventually, metricSample, startElasticsearchStandin, uniqueId, uniqueRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';
import { startPrivateBroker } from './private-broker.js';

const INGEST_MAIN = fileURLToPath(new URL('../../../apps/ingest/dist/src/main.js', import.meta.url));
const { values: args } = parseArgs({ options: { messages: { type: 'string', default: '3000' }, lines: { type: 'string', default: '20' }, 'cpu-prof-dir': { type: 'string' } } });
const MESSAGES = Number(args.messages);
const LINES = Number(args.lines);
const TOTAL = MESSAGES * LINES;

/** Device-like NDJSON: each message is one device's lines (50 devices), coloured, with a relative_time to drop. */
function payloads(tag: string): Buffer[] {
  return Array.from({ length: MESSAGES }, (_, m) =>
    Buffer.from(
      Array.from({ length: LINES }, (_, l) =>
        JSON.stringify({ entity_id: `dev-${m % 50}`, level: l % 10 === 0 ? 'warn' : 'info', message: `\u001b[32m[ OK ]\u001b[0m ${tag} m${m} l${l} sensor reading ${(m * l) % 997}.5 units`, relative_time: m + l / 1000 }),
      ).join('\n'),
    ),
  );
}

async function publishAll(url: string, topic: string, batch: Buffer[]): Promise<void> {
  const pub = await mqtt.connectAsync(url, { clientId: uniqueId('bench-pub'), protocolVersion: 5 });
  await Promise.all(batch.map((p) => pub.publishAsync(topic, p, { qos: 1 })));
  await pub.endAsync();
}

/** Polling interval of the waits that end a timed phase: short, so it adds little to the measured time. */
const POLL_MS = 5;
const PHASE_TIMEOUT_MS = 600_000;

async function rawRate(url: string): Promise<number> {
  const topic = `${uniqueTopicPrefix()}raw`;
  const sub = await mqtt.connectAsync(url, { clientId: uniqueId('bench-sub'), protocolVersion: 5 });
  let received = 0;
  sub.on('message', () => received++);
  await sub.subscribeAsync(topic, { qos: 1 });
  const batch = payloads('raw');
  const start = performance.now();
  await publishAll(url, topic, batch);
  await eventually(() => received === MESSAGES, PHASE_TIMEOUT_MS, POLL_MS); // the raw subscriber got everything
  const seconds = (performance.now() - start) / 1000;
  await sub.endAsync();
  return TOTAL / seconds;
}

/** CPU seconds (user + system) a child process has used so far (Linux /proc; NaN elsewhere). */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** `_sum / _count` of a histogram on ingest's /metrics. */
async function histogramMean(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return metricSample(text, `${name}_sum`) / metricSample(text, `${name}_count`);
}

async function ingestRate(url: string): Promise<{ rate: number; latencies: number[]; meanBatch: number; meanBulkMs: number; cpu: number }> {
  const es = await startElasticsearchStandin({ historyLimit: 100 });
  const prefix = uniqueTopicPrefix();
  const redisPrefix = uniqueRedisPrefix();
  const clientId = uniqueId('bench-ingest');
  const sub = new Redis(LOCAL_REDIS_URL);
  let streamed = 0;
  const latencies: number[] = [];
  sub.on('pmessage', (_p, _c, raw: string) => {
    const m = decodeLogChannelMessage(raw);
    if (!m) return;
    streamed += m.docs.length;
    latencies.push(m.ingested_at_ms - m.received_at_ms);
  });
  await sub.psubscribe(logChannelPattern(redisPrefix));
  // --cpu-prof-dir DIR: the ingest process writes a V8 CPU profile there when it exits.
  const profile = args['cpu-prof-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof-dir']}`] : [];
  const child = spawn(process.execPath, [...profile, INGEST_MAIN], {
    // INGEST_* from the bench's own environment pass through, to compare settings.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('INGEST_'))), PATH: process.env.PATH ?? '', MQTT_URL: url, MQTT_CLIENT_ID: clientId, MQTT_TOPIC_PREFIX: prefix, REDIS_URL: LOCAL_REDIS_URL, REDIS_KEY_PREFIX: redisPrefix, ELASTICSEARCH_URL: es.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    await eventually(() => out.includes('"mqtt connected"') && out.includes('"address"'), 20_000, POLL_MS); // ingest started
    const batch = payloads('ingest');
    const cpuBefore = await cpuSeconds(child.pid);
    const start = performance.now();
    await publishAll(url, `${prefix}iotsupport/logsink`, batch);
    // Ingest publishes a line to Redis only after Elasticsearch accepted it: streamed = stored.
    await eventually(() => streamed >= TOTAL, PHASE_TIMEOUT_MS, POLL_MS); // ingest stored and streamed every line
    const seconds = (performance.now() - start) / 1000;
    const cpu = (await cpuSeconds(child.pid)) - cpuBefore;
    const index = dailyIndexName('logstash-http-', Date.now());
    const missing = batch.flatMap((p) => Array.from({ length: LINES }, (_, l) => documentId(payloadDigest(p), l))).filter((id) => !es.get(index, id)).length;
    if (missing > 0) console.log(`WARNING: ${missing} lines not found in ${index} (run straddled UTC midnight?)`);
    const address = /"address":"(http:[^"]+)"/.exec(out)?.[1];
    const meanBatch = address ? await histogramMean(`${address}/metrics`, 'iot_logsink_batch_size') : Number.NaN;
    const meanBulkMs = address ? (await histogramMean(`${address}/metrics`, 'iot_logsink_es_write_duration_seconds')) * 1000 : Number.NaN;
    return { rate: TOTAL / seconds, latencies, meanBatch, meanBulkMs, cpu };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    sub.disconnect();
    await es.stop();
    // Ingest's device streams (packages/log-stream) live under the prefix.
    const redis = new Redis(LOCAL_REDIS_URL);
    await deleteRedisPrefix(redis, redisPrefix);
    redis.disconnect();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const broker = await startPrivateBroker();
try {
  console.log(`ingest benchmark: ${MESSAGES} MQTT messages x ${LINES} lines = ${TOTAL} lines, QoS 1, private Mosquitto (infra/mosquitto settings)`);
  // The raw phase is short and noisy: the median of three.
  const raws = [await rawRate(broker.url), await rawRate(broker.url), await rawRate(broker.url)].sort((a, b) => a - b);
  const raw = raws[1]!;
  const ingest = await ingestRate(broker.url);
  const sorted = ingest.latencies.sort((a, b) => a - b);
  console.log(`raw Mosquitto QoS 1 to an idle subscriber : ${Math.round(raw).toLocaleString('en')} lines/s (median of ${raws.map((r) => Math.round(r)).join(', ')})`);
  console.log(`through ingest (stored + streamed)        : ${Math.round(ingest.rate).toLocaleString('en')} lines/s`);
  console.log(`ratio ingest / raw                        : ${(ingest.rate / raw).toFixed(2)}`);
  console.log(`receive -> stored+published (ms)          : p50 ${percentile(sorted, 50)}  p99 ${percentile(sorted, 99)}  max ${sorted.at(-1)}`);
  console.log(`ingest process CPU                        : ${ingest.cpu.toFixed(2)} s (${((ingest.cpu / TOTAL) * 1e6).toFixed(0)} µs per line)`);
  console.log(`mean lines per _bulk request              : ${ingest.meanBatch.toFixed(0)} (mean ${ingest.meanBulkMs.toFixed(1)} ms each)`);
} finally {
  await broker.stop();
}
