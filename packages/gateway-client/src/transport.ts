import { Pool } from 'undici';
import { PreparedEvent, sendBody, withDroppedMarker } from './body.js';
import { AttemptDeadlines } from './deadlines.js';
import type { GatewayMetrics } from './metrics.js';

export type ItemKind = 'event' | 'probe' | 'close';

/** What one attempt sends: an event, an empty probe, or a close (with or without a last event). */
export interface SendRequest {
  kind: ItemKind;
  event: PreparedEvent | undefined;
  service: string;
  gatewayUrl: string;
  /** Events lost just before this one; written into its payload as `dropped`. */
  droppedBefore: number;
}

/** How one attempt ended, as far as retrying is concerned. */
export interface AttemptResult {
  kind: 'ok' | 'gone' | 'rejected' | 'retryable';
  status?: number;
}

const MAX_RETRY_DELAY_MS = 1000;
const RETRYABLE = (status: number) => status >= 500 || status === 408 || status === 429;

/** Backoff before attempt `attempts + 1`: doubles per attempt from `baseMs`, capped at 1 s, with jitter (50–100 %). */
export function retryDelayMs(baseMs: number, attempts: number): number {
  const delay = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** (attempts - 1));
  return delay * (0.5 + Math.random() / 2);
}

/**
 * `POST /internal/send` over one keep-alive pool per gateway origin, each attempt bounded by its
 * deadline. Knows nothing of queues: the caller decides whether and when to retry.
 */
export class GatewayTransport {
  private readonly pools = new Map<string, Pool>();
  /** Pool and path per gateway URL as callers give it: parsed once, not at every attempt. */
  private readonly targets = new Map<string, { pool: Pool; path: string }>();
  private readonly deadlines = new AttemptDeadlines();

  constructor(
    private readonly concurrency: number,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** One attempt; never rejects. */
  async post(tokenJson: string, item: SendRequest, timeoutMs: number): Promise<AttemptResult> {
    // Only an event after a gap is serialised again (with its marker); others are pasted as they are.
    const event = item.event && item.droppedBefore > 0 ? PreparedEvent.serialise(item.event.name, withDroppedMarker(item.event.data, item.droppedBefore)) : item.event;
    const body = sendBody(tokenJson, event, item.kind === 'close');
    const { pool, path } = this.poolFor(item.gatewayUrl);
    const stopTimer = this.metrics.duration.startTimer({ service: item.service });
    const deadline = this.deadlines.start(timeoutMs);
    try {
      const res = await pool.request({
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json' },
        body,
        signal: deadline.signal,
      });
      await res.body.dump();
      const status = res.statusCode;
      if (status >= 200 && status < 300) return { kind: 'ok', status };
      if (status === 404) return { kind: 'gone', status };
      return { kind: RETRYABLE(status) ? 'retryable' : 'rejected', status };
    } catch {
      // Timeout, refused or reset connection: the gateway may be restarting.
      return { kind: 'retryable' };
    } finally {
      deadline.done();
      stopTimer();
    }
  }

  poolFor(gatewayUrl: string): { pool: Pool; path: string } {
    let target = this.targets.get(gatewayUrl);
    if (!target) {
      const url = new URL(gatewayUrl);
      let pool = this.pools.get(url.origin);
      if (!pool) {
        // Keep-alive connections, one request each at a time (the gateway answers in order anyway).
        pool = new Pool(url.origin, { connections: this.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
        this.pools.set(url.origin, pool);
      }
      target = { pool, path: `${url.pathname.replace(/\/+$/, '')}/internal/send` };
      this.targets.set(gatewayUrl, target);
    }
    return target;
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
    this.targets.clear();
  }
}
