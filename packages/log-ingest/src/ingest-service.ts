import { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { mqttTopic } from '@iotsupport/config';
import { streamRetention } from '@iotsupport/log-stream';
import { CLIENT_CLOSE_MS, closeRedis, logConnectionErrors, mqttReadiness, redisReadiness, withTimeout, type Lifecycle, type Logger } from '@iotsupport/observability';
import type { BackoffPolicy } from './backoff.js';
import { BulkStore } from './bulk-store.js';
import { createEsBulkApi, type BulkApi } from './es-bulk-api.js';
import { StoredBatchPublisher } from './stored-batch-publisher.js';
import { createIngestMetrics } from './metrics.js';
import { MqttLogSource } from './mqtt-source.js';
import { IngestPipeline } from './pipeline.js';

/** The configuration ingest reads (a structural subset of `@iotsupport/config`'s Config). */
export interface IngestSettings {
  MQTT_URL: string;
  MQTT_CLIENT_ID: string;
  MQTT_USERNAME?: string | undefined;
  MQTT_PASSWORD?: string | undefined;
  MQTT_TOPIC_PREFIX: string;
  REDIS_URL: string;
  REDIS_KEY_PREFIX: string;
  ELASTICSEARCH_URL?: string | undefined;
  ELASTICSEARCH_USERNAME?: string | undefined;
  ELASTICSEARCH_PASSWORD?: string | undefined;
  ELASTICSEARCH_INDEX_PREFIX: string;
  ELASTICSEARCH_DEAD_LETTER_INDEX: string;
  LOG_ENTITY_FIELD: string;
  INGEST_MAX_INFLIGHT: number;
  INGEST_BULK_MAX_LINES: number;
  INGEST_RETRY_MAX_DELAY_MS: number;
  INGEST_SESSION_EXPIRY_SECONDS: number;
  LOG_STREAM_MAX_LINES: number;
  LOG_STREAM_MAX_AGE_SECONDS: number;
}

export const LOGSINK_TOPIC = 'iotsupport/logsink';

/** First retry waits up to 100 ms; the cap is INGEST_RETRY_MAX_DELAY_MS. */
const BACKOFF_BASE_MS = 100;

export interface IngestService {
  /** Forced stop (tests, or after the graceful drain overran): abandons retries, closes clients. */
  close(): Promise<void>;
}

/**
 * Wires ingest together and registers its readiness checks and shutdown steps, in the order the
 * contract needs: stop taking messages → finish what is in flight (store, fan out, ack) →
 * disconnect MQTT (the session stays) → close Redis and Elasticsearch.
 */
export function startIngestService(settings: IngestSettings, deps: { logger: Logger; registry: Registry; lifecycle: Lifecycle }): IngestService {
  const logger = deps.logger.child({ component: 'ingest' });
  const metrics = createIngestMetrics(deps.registry);
  const abort = new AbortController();
  const backoff: BackoffPolicy = { baseMs: Math.min(BACKOFF_BASE_MS, settings.INGEST_RETRY_MAX_DELAY_MS), capMs: settings.INGEST_RETRY_MAX_DELAY_MS };

  const redis = new Redis(settings.REDIS_URL, { lazyConnect: false });
  logConnectionErrors(redis, logger, 'redis');

  const bulkApi: BulkApi | undefined = settings.ELASTICSEARCH_URL
    ? createEsBulkApi({ url: settings.ELASTICSEARCH_URL, username: settings.ELASTICSEARCH_USERNAME, password: settings.ELASTICSEARCH_PASSWORD })
    : undefined;
  if (!bulkApi) logger.warn('ELASTICSEARCH_URL is not set: log lines are streamed to Redis but NOT stored');
  const store = bulkApi && new BulkStore(bulkApi, { deadLetterIndex: settings.ELASTICSEARCH_DEAD_LETTER_INDEX, backoff, signal: abort.signal }, metrics, logger);
  const publisher = new StoredBatchPublisher(redis, { backoff, signal: abort.signal, retention: streamRetention(settings) }, metrics, logger);
  const pipeline = new IngestPipeline({
    parse: { indexPrefix: settings.ELASTICSEARCH_INDEX_PREFIX, entityField: settings.LOG_ENTITY_FIELD },
    redisKeyPrefix: settings.REDIS_KEY_PREFIX,
    maxBatchLines: settings.INGEST_BULK_MAX_LINES,
    store,
    publisher,
    backoff,
    signal: abort.signal,
    metrics,
    logger,
  });
  const source = new MqttLogSource(
    {
      url: settings.MQTT_URL,
      clientId: settings.MQTT_CLIENT_ID,
      username: settings.MQTT_USERNAME,
      password: settings.MQTT_PASSWORD,
      topic: mqttTopic(settings, LOGSINK_TOPIC),
      maxInflight: settings.INGEST_MAX_INFLIGHT,
      sessionExpirySeconds: settings.INGEST_SESSION_EXPIRY_SECONDS,
      logger,
      metrics,
    },
    (message) => pipeline.accept(message),
    pipeline,
  );
  pipeline.onProgress(() => source.onPipelineProgress());

  deps.lifecycle.addReadinessCheck('redis', redisReadiness(redis));
  deps.lifecycle.addReadinessCheck('mqtt', mqttReadiness(source));
  if (bulkApi) deps.lifecycle.addReadinessCheck('elasticsearch', () => bulkApi.ping());

  let closed = false;
  const closeClients = async () => {
    if (closed) return;
    closed = true;
    // Bounded: a broker or Redis that is gone must not hold the process past its drain.
    await Promise.allSettled([
      source.close(),
      closeRedis(redis),
      bulkApi && withTimeout(bulkApi.close(), CLIENT_CLOSE_MS),
    ]);
  };
  deps.lifecycle.onShutdown('ingest: stop taking messages', () => source.stopTaking());
  deps.lifecycle.onShutdown('ingest: finish in-flight messages', () => pipeline.drain());
  deps.lifecycle.onShutdown('ingest: close mqtt, redis, elasticsearch', closeClients);

  return {
    async close() {
      source.stopTaking();
      abort.abort();
      await pipeline.drain();
      await closeClients();
    },
  };
}
