import { Type, type Static } from 'typebox';

/**
 * The whole environment of every deployable in one typebox schema.
 * Names are the contract's (`../shared/reference/contract.md`), kept verbatim so an operator can
 * grep a variable from a manifest straight to this file. Everything below "beyond the contract"
 * is ours; each has a default that suits one pod on a laptop.
 */
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const PositiveInt = Type.Integer({ minimum: 1 });
const Url = (protocols: string) => Type.String({ pattern: `^(${protocols})://\\S+$` });

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),

  PORT: Type.Optional(Port),
  INTERNAL_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3111 }),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),

  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://\\S+$' }),
  REDIS_KEY_PREFIX: Type.String({ default: 'iot', pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
  DATABASE_URL: Type.String({ default: 'postgres://postgres@127.0.0.1:5432/iotsupport', pattern: '^postgres(ql)?://\\S+$' }),

  MQTT_URL: Type.String({ default: 'mqtt://127.0.0.1:1883', pattern: '^(mqtts?|wss?|tcp|ssl)://\\S+$' }),
  MQTT_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  MQTT_USERNAME: Type.Optional(Type.String()),
  MQTT_PASSWORD: Type.Optional(Type.String()),

  ELASTICSEARCH_URL: Type.Optional(Url('https?')),
  ELASTICSEARCH_USERNAME: Type.Optional(Type.String()),
  ELASTICSEARCH_PASSWORD: Type.Optional(Type.String()),
  ELASTICSEARCH_INDEX_PREFIX: Type.String({ default: 'logstash-http-', pattern: '^[a-z0-9_.+-]*$' }),
  LOG_ENTITY_FIELD: Type.String({ default: 'entity_id', minLength: 1 }),

  SSE_GATEWAY_URL: Type.String({ default: 'http://127.0.0.1:3102', pattern: '^https?://\\S+$' }),
  SSE_CALLBACK_SECRET: Type.Optional(Type.String({ minLength: 1 })),

  OIDC_ENABLED: Type.Boolean({ default: false }),
  OIDC_ISSUER_URL: Type.Optional(Url('https?')),
  OIDC_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  OIDC_JWKS_URL: Type.Optional(Url('https?')),
  OIDC_COOKIE_NAME: Type.String({ default: 'access_token', minLength: 1 }),
  OIDC_CLOCK_SKEW_SECONDS: Type.Integer({ minimum: 0, maximum: 600, default: 30 }),
  /**
   * (ours) Least time between two JWKS fetches caused by a token with an unknown `kid`: forged kids
   * cannot make us hammer the issuer, and a key rotated in is usable at most this long after first seen.
   */
  OIDC_JWKS_REFETCH_COOLDOWN_SECONDS: Type.Number({ minimum: 0, maximum: 3600, default: 10 }),

  ROTATION_CRON: Type.String({ default: '0 2 * * *' }),
  ROTATION_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, default: 300 }),
  ROTATION_CRITICAL_THRESHOLD_DAYS: Type.Integer({ minimum: 1, default: 7 }),
  SECRET_KEY: Type.Optional(Type.String({ minLength: 16 })),
  GRACEFUL_SHUTDOWN_TIMEOUT: Type.Number({ exclusiveMinimum: 0, default: 25 }),

  // ---- beyond the contract -------------------------------------------------------------------
  /** Identity of this process in Redis (ownership, "which pod received it"). Default: hostname-pid. */
  POD_ID: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' })),
  /**
   * After SIGTERM, how long a process keeps serving with readiness already 503 before it closes
   * its listeners, so load balancers stop routing to it first (like a k8s preStop sleep). Part of
   * GRACEFUL_SHUTDOWN_TIMEOUT, not added to it.
   */
  SHUTDOWN_DRAIN_SECONDS: Type.Number({ minimum: 0, default: 5 }),
  /** Prepended to every MQTT topic, so test runs and staging can share one broker. */
  MQTT_TOPIC_PREFIX: Type.String({ default: '', pattern: '^[^#+]*$' }),
  /** Unacknowledged MQTT messages ingest holds at most (MQTT 5 receive maximum). */
  INGEST_MAX_INFLIGHT: Type.Integer({ minimum: 1, maximum: 65535, default: 64 }),
  /** Lines per `_bulk` request at most. */
  INGEST_BULK_MAX_LINES: Type.Integer({ minimum: 1, default: 2000 }),
  /** Cap of the exponential backoff between Elasticsearch retries. */
  INGEST_RETRY_MAX_DELAY_MS: Type.Integer({ minimum: 1, default: 30000 }),
  /**
   * MQTT 5 session expiry of ingest's persistent session: how long the broker keeps queueing
   * for it while it is down (MQTT 5 ends the session at disconnect without it). Default 7 days.
   */
  INGEST_SESSION_EXPIRY_SECONDS: Type.Integer({ minimum: 1, maximum: 4294967295, default: 604800 }),
  /**
   * The retained window of each device's log stream (docs/streams.md): lines kept at most, and
   * for how long at most, for resumes and take-overs. Trimmed at each append; a device idle for
   * longer than the age has its window expire as a whole (its epoch stays).
   */
  LOG_STREAM_MAX_LINES: Type.Integer({ minimum: 1, default: 5000 }),
  LOG_STREAM_MAX_AGE_SECONDS: Type.Integer({ minimum: 1, default: 600 }),
  /** Index that receives lines Elasticsearch refused permanently (never retried). */
  ELASTICSEARCH_DEAD_LETTER_INDEX: Type.String({ default: 'iotsupport-deadletter', pattern: '^[a-z0-9_.+-]+$' }),

  /** `shared`: one gateway deployment for all pods; `per-pod`: a gateway beside each pod. */
  SSE_GATEWAY_TOPOLOGY: Type.Union([Type.Literal('shared'), Type.Literal('per-pod')], { default: 'shared' }),
  /** Concurrent `/internal/send` requests per pod. */
  GATEWAY_SEND_CONCURRENCY: Type.Integer({ minimum: 1, default: 64 }),
  GATEWAY_SEND_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 2000 }),
  GATEWAY_SEND_RETRIES: Type.Integer({ minimum: 0, maximum: 10, default: 2 }),
  /** Events queued for one slow connection before new ones are dropped (and counted). */
  GATEWAY_CONNECTION_QUEUE_LIMIT: Type.Integer({ minimum: 1, default: 500 }),
  /** Bytes of event data queued for one slow connection at most (with the count above: bounded memory per browser). */
  GATEWAY_CONNECTION_QUEUE_BYTES: Type.Integer({ minimum: 1, default: 4 * 1024 * 1024 }),
  /** How long a pod's ownership of a connection lasts without renewal. */
  OWNERSHIP_LEASE_SECONDS: Type.Integer({ minimum: 1, default: 3 }),
  /** How often each owner probes its connections at the gateway (a 404 ends them). */
  CONNECTION_PROBE_INTERVAL_SECONDS: Type.Integer({ minimum: 1, default: 60 }),
  /**
   * How often each api pod runs the registry sweep: expired identity bindings are removed and
   * closed at the gateway, connections unconfirmed for 2 probe intervals are probed (docs/registry.md).
   */
  REGISTRY_SWEEP_INTERVAL_SECONDS: Type.Integer({ minimum: 1, default: 5 }),
  /** Interval of the rotation tick (timeouts, start the next device). */
  ROTATION_TICK_SECONDS: Type.Integer({ minimum: 1, default: 5 }),
  /** How often each worker checks that the rotation job schedulers exist (and re-creates a missing one). */
  ROTATION_SCHEDULER_WATCHDOG_SECONDS: Type.Integer({ minimum: 1, default: 30 }),
});

export type Env = Static<typeof EnvSchema>;
