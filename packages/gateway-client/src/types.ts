import type { Registry } from 'prom-client';

/**
 * How one queued item ended:
 * - `ok`: the gateway accepted it (200 ok or buffered);
 * - `not_found`: 404, the connection is gone (the `onGone` callback ran);
 * - `rejected`: another 4xx, never retried;
 * - `failed`: 5xx / timeout / network error on every attempt;
 * - `dropped`: the connection's queue was full, never sent;
 * - `fenced`: this pod may no longer send to the connection (ownership lost), never sent;
 * - `discarded`: removed unsent by `discard()`, a 404 on an earlier item, a close, or `destroy()`.
 */
export type SendStatus = 'ok' | 'not_found' | 'rejected' | 'failed' | 'dropped' | 'fenced' | 'discarded';

export interface SendOutcome {
  status: SendStatus;
  /** HTTP status of the last attempt, when there was a response. */
  httpStatus?: number;
  attempts: number;
}

export interface SendOptions {
  /** Metrics label; defaults to the event name (`probe` / `close` for those). */
  service?: string;
  /** Gateway that holds the connection; defaults to the client's `baseUrl` (per-pod topology). */
  gatewayUrl?: string;
  /**
   * Send only while this process owns the connection (the `fence` option decides). Forwarded
   * events are fenced; a close or probe on behalf of the registry (replacement, expiry) is not.
   */
  fenced?: boolean;
  /**
   * The sender sends again what does not go out (stream delivery rewinds to it and fills the gap
   * from the device's window): a `failed` or `fenced` outcome is then not a loss, so it is neither
   * counted as dropped nor marked as `dropped` on the connection's next event. A gap this event
   * itself was to report passes on to the next one. The `resent` events queued behind one that
   * failed or was fenced end the same way, unsent, so none of them reaches the browser before it.
   */
  resent?: boolean;
}

export interface GatewayClientOptions {
  /** SSE_GATEWAY_URL. */
  baseUrl: string;
  /** GATEWAY_SEND_CONCURRENCY: open requests at most, over all connections and gateways. */
  concurrency: number;
  /** GATEWAY_SEND_TIMEOUT_MS: one attempt, from start to response headers and body. */
  timeoutMs: number;
  /** GATEWAY_SEND_RETRIES: extra attempts after a 5xx, timeout or network error. */
  retries: number;
  /** GATEWAY_CONNECTION_QUEUE_LIMIT: events waiting per connection (the one in flight not counted). */
  queueLimit: number;
  /**
   * GATEWAY_CONNECTION_QUEUE_BYTES: characters of event data waiting per connection at most
   * (default 4 MiB). An event is accepted into an empty queue whatever its size (≤ 100 kB anyway).
   */
  queueBytes?: number;
  registry: Registry;
  /** First delay between attempts; doubles per retry, capped at 1 s, with jitter. */
  retryBaseDelayMs?: number;
  /** A 404: the connection is gone. The owner cleans up its state as a disconnect. Called once per 404. */
  onGone?: (token: string) => void;
  /**
   * Fencing: asked right before every attempt of a `fenced` item. Returns how many ms this process may still send to
   * the connection (its ownership lease), or null when it may not. An attempt is only started with
   * at least `minFenceMs` left and is aborted before the lease runs out, so a send never overlaps
   * with a new owner's.
   */
  fence?: (token: string) => number | null;
  /** Least lease time an attempt needs to start (default 100 ms). */
  minFenceMs?: number;
}

/** The environment variables the client is configured by (names as in @iotsupport/config). */
export interface GatewayClientConfig {
  SSE_GATEWAY_URL: string;
  GATEWAY_SEND_CONCURRENCY: number;
  GATEWAY_SEND_TIMEOUT_MS: number;
  GATEWAY_SEND_RETRIES: number;
  GATEWAY_CONNECTION_QUEUE_LIMIT: number;
  GATEWAY_CONNECTION_QUEUE_BYTES: number;
}

/** Client options from the environment; the caller adds what is its own (metrics registry, fence, onGone). */
export function gatewayClientOptions(config: GatewayClientConfig): Pick<GatewayClientOptions, 'baseUrl' | 'concurrency' | 'timeoutMs' | 'retries' | 'queueLimit' | 'queueBytes'> {
  return {
    baseUrl: config.SSE_GATEWAY_URL,
    concurrency: config.GATEWAY_SEND_CONCURRENCY,
    timeoutMs: config.GATEWAY_SEND_TIMEOUT_MS,
    retries: config.GATEWAY_SEND_RETRIES,
    queueLimit: config.GATEWAY_CONNECTION_QUEUE_LIMIT,
    queueBytes: config.GATEWAY_CONNECTION_QUEUE_BYTES,
  };
}
