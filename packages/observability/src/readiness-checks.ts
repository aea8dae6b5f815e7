import type { ReadinessCheck } from './lifecycle.js';

/**
 * Readiness checks for the clients every app holds. Typed structurally so this package does not
 * depend on ioredis, pg or mqtt; Lifecycle bounds each check to 1 s, so a hung dependency reads
 * as "not ready" rather than a hung probe.
 */

/** ioredis: connected (not reconnecting or buffering into the offline queue) and answering PING. */
export function redisReadiness(redis: { status: string; ping(): Promise<unknown> }): ReadinessCheck {
  return async () => redis.status === 'ready' && (await redis.ping()) === 'PONG';
}

/** pg Pool (or Client): a trivial query completes. */
export function postgresReadiness(pool: { query(text: string): Promise<unknown> }): ReadinessCheck {
  return async () => {
    await pool.query('select 1');
    return true;
  };
}

/** mqtt.js client: the session with the broker is up. */
export function mqttReadiness(client: { connected: boolean }): ReadinessCheck {
  return () => client.connected;
}

/**
 * The first shutdown step of a process behind a load balancer: readiness is already 503, keep
 * serving for `seconds` so the balancer stops routing here before the listeners close.
 */
export function drainDelay(seconds: number): () => Promise<void> {
  return () => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
