import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import type { Config } from '@iotsupport/config';
import type { DatabaseClient } from '@iotsupport/db';
import type { Lifecycle, Logger, Metrics } from '@iotsupport/observability';

/**
 * Everything a route plugin may use, created once per process by main.ts (tests build their own).
 * A type alias, not an interface: fastify plugin options must be indexable.
 */
export type ApiDeps = {
  config: Config;
  logger: Logger;
  /** The process's prom-client registry (`metrics.registry`): register feature metrics here. */
  metrics: Metrics;
  /** `addReadinessCheck` for a feature's own dependency; shutdown order is main's (see app.ts). */
  lifecycle: Lifecycle;
  db: DatabaseClient;
  /** Shared command connection, no key prefix (packages prefix with config.REDIS_KEY_PREFIX). For SUBSCRIBE, `redis.duplicate()` and close it in an onClose hook. */
  redis: Redis;
  /** Connected (or reconnecting) MQTT client; topics go through `mqttTopic(config, ...)`. */
  mqtt: MqttClient;
};

/** A feature: a fastify plugin that receives the deps as its options. */
export type ApiRoutePlugin = FastifyPluginAsyncTypebox<ApiDeps>;
