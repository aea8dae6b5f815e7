import type { Redis } from 'ioredis';
import type { Logger } from '@iotsupport/observability';

/**
 * Notices between api pods, over Redis pub/sub:
 * - `sync` (to the owner's own channel, answered with `ack`): "the subscriptions of this
 *   connection changed" (and with `from`: "deliver this entity after this cursor", a resume).
 *   The pod that served the subscribe call waits for the owner to listen to the new entity before
 *   answering 200, so a 200 means the next batch reaches the browser.
 * - `forget` (fleet channel): "this connection/stream is gone" — its owner drops it now instead of
 *   at its next send (404) or reconcile.
 * - `released` (fleet channel): "this pod drained and ended its lease" — take its connections now.
 * A lost notice costs latency, never correctness: each owner reconciles with Redis periodically.
 */
export type FleetNotice =
  | { t: 'sync'; rid: string; reply: string | null; id: number; from?: StartAfter }
  | { t: 'ack'; id: number }
  | { t: 'forget'; rid: string; token: string }
  | { t: 'released'; instance: string };

/** A resume: deliver `entityId` to the connection after `cursor`. */
export interface StartAfter {
  entityId: string;
  cursor: string;
}

export function fleetChannel(prefix: string): string {
  return `${prefix}:fwd:fleet`;
}

export function podChannel(prefix: string, instance: string): string {
  return `${prefix}:fwd:pod:${instance}`;
}

export function parseNotice(raw: string): FleetNotice | undefined {
  try {
    const value = JSON.parse(raw) as FleetNotice;
    return typeof value === 'object' && value !== null && typeof value.t === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export interface FleetSyncOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
  /** How long a subscribe call waits for the owner's ack. */
  timeoutMs: number;
}

/** The requesting side of `sync` (waiting for acks) and the senders of every notice. */
export class FleetSync {
  private seq = 0;
  private readonly waiting = new Map<number, () => void>();

  constructor(private readonly opts: FleetSyncOptions) {}

  /**
   * Asks `owner` to re-read the connection and listen to its entities; resolves on its ack, at once
   * when no process listens on the owner's channel (it drained, died or lost that lease), or after
   * the timeout (a frozen owner). A dead owner's connections are re-read at take-over anyway.
   */
  async requestSync(owner: string, requestId: string, replyTo: string | null, from?: StartAfter): Promise<'acked' | 'unheard' | 'timeout'> {
    const id = ++this.seq;
    const acked = new Promise<'acked'>((resolve) => this.waiting.set(id, () => resolve('acked')));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), replyTo === null ? 0 : this.opts.timeoutMs);
    });
    try {
      const listeners = await this.publish(podChannel(this.opts.prefix, owner), { t: 'sync', rid: requestId, reply: replyTo, id, ...(from ? { from } : {}) });
      // On one Redis (what the apps connect to) 0 means nobody listens. On a Cluster PUBLISH counts
      // only the node's own subscribers: there this fast path would answer before the owner listened.
      if (listeners === 0) return 'unheard';
      const result = await Promise.race([acked, timedOut]);
      if (result === 'timeout') this.opts.logger.debug({ owner, requestId }, 'subscription sync not acknowledged in time');
      return result;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id);
    }
  }

  /** An `ack` arrived on this pod's channel. */
  acknowledged(id: number): void {
    this.waiting.get(id)?.();
  }

  async ack(replyTo: string, id: number): Promise<void> {
    await this.publish(podChannel(this.opts.prefix, replyTo), { t: 'ack', id });
  }

  async forget(requestId: string, token: string): Promise<void> {
    await this.publish(fleetChannel(this.opts.prefix), { t: 'forget', rid: requestId, token });
  }

  async released(instance: string): Promise<void> {
    await this.publish(fleetChannel(this.opts.prefix), { t: 'released', instance });
  }

  /** Resolves with how many subscribers heard it. */
  private async publish(channel: string, notice: FleetNotice): Promise<number> {
    return this.opts.redis.publish(channel, JSON.stringify(notice));
  }
}
