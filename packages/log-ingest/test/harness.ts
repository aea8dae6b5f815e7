import type { Test } from 'tap';
import mqtt, { type MqttClient } from 'mqtt';
import { Redis } from 'ioredis';
import { Gauge, Registry } from 'prom-client';
import { decodeLogChannelMessage, logChannelPattern, type LogChannelMessage } from '@iotsupport/contracts';
import { Lifecycle } from '@iotsupport/observability';
import { mqttTopic } from '@iotsupport/config';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL, deleteRedisPrefix, eventually, purgeMqttSession, startElasticsearchStandin, uniqueId, uniqueRedisPrefix, uniqueTopicPrefix, type ElasticsearchStandin } from '@iotsupport/testkit';
import { LOGSINK_TOPIC, startIngestService, type IngestService, type IngestSettings } from '../src/index.js';
import { silentLogger } from './helpers.js';

/** Settings for one isolated ingest: own topic root, client id, Redis prefix and indices. */
export function isolatedSettings(overrides: Partial<IngestSettings> = {}): IngestSettings {
  return {
    MQTT_URL: LOCAL_MQTT_URL,
    MQTT_CLIENT_ID: uniqueId('ingest'),
    MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
    REDIS_URL: LOCAL_REDIS_URL,
    REDIS_KEY_PREFIX: uniqueRedisPrefix(),
    ELASTICSEARCH_INDEX_PREFIX: 'logstash-http-',
    ELASTICSEARCH_DEAD_LETTER_INDEX: 'iotsupport-deadletter',
    LOG_ENTITY_FIELD: 'entity_id',
    INGEST_MAX_INFLIGHT: 64,
    INGEST_BULK_MAX_LINES: 2000,
    INGEST_RETRY_MAX_DELAY_MS: 300,
    INGEST_SESSION_EXPIRY_SECONDS: 3600,
    LOG_STREAM_MAX_LINES: 5000,
    LOG_STREAM_MAX_AGE_SECONDS: 600,
    ...overrides,
  };
}

/** A QoS 1 publisher on the logsink topic of `settings`. */
export async function startPublisher(t: Test, settings: IngestSettings): Promise<{ publish(payload: string | Buffer): Promise<void>; client: MqttClient }> {
  const client = await mqtt.connectAsync(LOCAL_MQTT_URL, { clientId: uniqueId('pub'), protocolVersion: 5, clean: true });
  t.teardown(() => client.endAsync());
  const topic = mqttTopic(settings, LOGSINK_TOPIC);
  return {
    client,
    async publish(payload) {
      await client.publishAsync(topic, payload, { qos: 1 });
    },
  };
}

/** Collects the Redis fan-out under the settings' prefix, per channel in arrival order. */
export async function collectFanout(t: Test, settings: IngestSettings): Promise<{ all: Array<{ channel: string; message: LogChannelMessage }>; invalid: string[] }> {
  const sub = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    sub.disconnect();
    // Ingest's device streams live under the prefix.
    const redis = new Redis(LOCAL_REDIS_URL);
    await deleteRedisPrefix(redis, settings.REDIS_KEY_PREFIX);
    redis.disconnect();
  });
  const out = { all: [] as Array<{ channel: string; message: LogChannelMessage }>, invalid: [] as string[] };
  sub.on('pmessage', (_p, channel, payload) => {
    const message = decodeLogChannelMessage(payload);
    if (message) out.all.push({ channel, message });
    else out.invalid.push(payload);
  });
  await sub.psubscribe(logChannelPattern(settings.REDIS_KEY_PREFIX));
  return out;
}

export interface RunningIngest {
  service: IngestService;
  registry: Registry;
  lifecycle: Lifecycle;
}

/** Ingest in this process with its own registry and lifecycle; closed (and its session purged) at teardown. */
export function startInProcessIngest(t: Test, settings: IngestSettings, shutdownTimeoutSeconds = 20): RunningIngest {
  const registry = new Registry();
  const shuttingDown = new Gauge({ name: 'application_shutting_down', help: 'x', registers: [registry] });
  const lifecycle = new Lifecycle(silentLogger, shuttingDown, shutdownTimeoutSeconds);
  const service = startIngestService(settings, { logger: silentLogger, registry, lifecycle });
  t.teardown(async () => {
    await service.close();
    await purgeMqttSession(settings.MQTT_CLIENT_ID);
  });
  return { service, registry, lifecycle };
}

export async function startStandin(t: Test): Promise<ElasticsearchStandin> {
  const es = await startElasticsearchStandin();
  t.teardown(() => es.stop());
  return es;
}

/** `count` NDJSON lines as one payload; entity `e{k}` cycles over `entities`. */
export function ndjsonBatch(tag: string, count: number, entities = 3): string {
  return Array.from({ length: count }, (_, i) => JSON.stringify({ entity_id: `e${i % entities}`, message: `${tag} line ${i}`, seq: i, tag })).join('\n');
}

/**
 * The whole rig of an ingest test: an Elasticsearch stand-in, isolated settings, a fan-out
 * collector, ingest in this process (ready), and an MQTT publisher on the test's topic root.
 */
export async function startIngestRig(t: Test, overrides: Partial<IngestSettings> = {}) {
  const es = await startStandin(t);
  const settings = isolatedSettings({ ELASTICSEARCH_URL: es.url, ...overrides });
  const fanout = await collectFanout(t, settings);
  const { registry, lifecycle } = startInProcessIngest(t, settings);
  await eventually(async () => (await lifecycle.readiness()).ready, 10_000);
  const publisher = await startPublisher(t, settings);
  return { es, settings, fanout, registry, lifecycle, publisher };
}
