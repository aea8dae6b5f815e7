import { withTimeout, type Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import { mqttReadiness, postgresReadiness, redisReadiness } from './readiness-checks.js';

/**
 * What the apps share in creating and closing their Redis and MQTT clients. Typed structurally,
 * like readiness-checks.ts, so this package does not depend on ioredis or mqtt. The ingest MQTT
 * source has its own session options (persistent session, QoS 1) and does not use these.
 */

/** The MQTT settings of the config (`Config` satisfies it). */
export interface MqttSettings {
  MQTT_CLIENT_ID?: string | undefined;
  MQTT_USERNAME?: string | undefined;
  MQTT_PASSWORD?: string | undefined;
}

/** Options for `mqtt.connect(config.MQTT_URL, …)`: reconnect every second, give up a connect after 5 s. */
export function mqttConnectOptions(config: MqttSettings) {
  return {
    clientId: config.MQTT_CLIENT_ID,
    username: config.MQTT_USERNAME,
    password: config.MQTT_PASSWORD,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
  };
}

/** A client that reconnects on its own: its errors are logged as warnings rather than crash the process. */
export function logConnectionErrors(
  client: { on(event: 'error', listener: (err: Error) => void): unknown },
  logger: Logger,
  what: 'redis' | 'mqtt',
): void {
  client.on('error', (err) => logger.warn({ err: err.message }, `${what} connection error`));
}

/** How long a graceful close may take before the client is cut, so shutdown still ends in time. */
export const CLIENT_CLOSE_MS = 2000;

/** `graceful()` bounded by `ms`; when it fails or overruns (a client stuck reconnecting), `force()`. */
export async function closeWithin(ms: number, graceful: () => Promise<unknown>, force: () => unknown): Promise<void> {
  try {
    await withTimeout(graceful(), ms);
  } catch {
    await force();
  }
}

/** ioredis: QUIT, else disconnect. */
export function closeRedis(redis: { quit(): Promise<unknown>; disconnect(): void }, ms = CLIENT_CLOSE_MS): Promise<void> {
  return closeWithin(ms, () => redis.quit(), () => redis.disconnect());
}

/** The part of an MQTT.js client that closing it needs. */
export interface ClosableMqttClient {
  readonly connected: boolean;
  endAsync(): Promise<void>;
  stream: { destroy(): unknown };
  once(event: 'close', listener: () => void): unknown;
}

/**
 * mqtt.js: a clean DISCONNECT, else the connection is cut by destroying its socket — not with
 * `end(true)`: MQTT.js 5 ignores `end()` while a clean end is already under way, so a broker that
 * stopped answering would keep the socket open. A cut connection counts as closed only once the
 * client has seen its socket close (the client's `close` event comes a tick or more after
 * `destroy()`), so `connected` is false when this returns.
 */
export function closeMqtt(client: ClosableMqttClient, ms = CLIENT_CLOSE_MS): Promise<void> {
  return closeWithin(ms, () => client.endAsync(), () => cutMqtt(client, ms));
}

async function cutMqtt(client: ClosableMqttClient, ms: number): Promise<void> {
  const closed = client.connected ? new Promise<void>((resolve) => client.once('close', resolve)) : Promise.resolve();
  client.stream.destroy();
  await withTimeout(closed, ms).catch(() => undefined);
}

/** Readiness of an app that holds the usual three: Redis answers, PostgreSQL answers, the MQTT session is up. */
export function addClientReadinessChecks(
  lifecycle: Lifecycle,
  clients: {
    redis: Parameters<typeof redisReadiness>[0];
    postgres: Parameters<typeof postgresReadiness>[0];
    mqtt: Parameters<typeof mqttReadiness>[0];
  },
): void {
  lifecycle.addReadinessCheck('redis', redisReadiness(clients.redis));
  lifecycle.addReadinessCheck('postgres', postgresReadiness(clients.postgres));
  lifecycle.addReadinessCheck('mqtt', mqttReadiness(clients.mqtt));
}
