import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import type { Config } from '@iotsupport/config';
import type { DatabaseClient } from '@iotsupport/db';
import type { Lifecycle, Logger, Metrics } from '@iotsupport/observability';
import type { RotationService } from '@iotsupport/rotation';
import type { SseConnections } from '@iotsupport/sse-connections';

/**
 * Everything a route plugin may use, created once per process by createApiPod (pod.ts).
 * A type alias, not an interface: fastify plugin options must be indexable.
 */
export type ApiDeps = {
  config: Config;
  logger: Logger;
  /** The process's prom-client registry (`metrics.registry`): register feature metrics here. */
  metrics: Metrics;
  /** `addReadinessCheck` for a feature's own dependency; shutdown order is createApiPod's (pod.ts). */
  lifecycle: Lifecycle;
  db: DatabaseClient;
  /** Shared command connection, no key prefix (packages prefix with config.REDIS_KEY_PREFIX). For SUBSCRIBE, `redis.duplicate()` and close it in an onClose hook. */
  redis: Redis;
  /** Connected (or reconnecting) MQTT client; topics go through `mqttTopic(config, ...)`. */
  mqtt: MqttClient;
};

/** The services route plugins share, built once per process from the deps (services.ts). */
export type ApiServices = {
  /** The SSE connection side: connection service, caller identity, forwarding, probe and sweep (SSE callback and device logs). */
  sse: SseConnections;
  /** Credential rotation (rotation and iot routes). */
  rotation: RotationService;
};

/** What a route plugin receives as its options: the deps and the shared services. */
export type ApiContext = ApiDeps & ApiServices;

/** A feature: a fastify plugin that receives the context as its options. */
export type ApiRoutePlugin = FastifyPluginAsyncTypebox<ApiContext>;
