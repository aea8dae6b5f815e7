import { performance } from 'node:perf_hooks';
import type { Logger } from '@iotsupport/observability';
import type { Checkpoint, OwnershipStore } from '@iotsupport/realtime-state';

/**
 * Margin kept off the lease when judging it locally: Redis processes a renewal a little after we
 * sent it, and clocks tick at slightly different rates. The old owner's last send must end before
 * Redis lets anyone take over.
 */
export const LEASE_SAFETY_MS = 250;

export interface PodLeaseOptions {
  store: OwnershipStore;
  podId: string;
  gateway: string;
  leaseMs: number;
  logger: Logger;
  /** A new instance holds a lease (at start, and after a lost one). */
  onAcquired(instance: string): void | Promise<void>;
  /** The lease ran out in Redis: stop sending at once and forget everything owned. */
  onLost(): void;
  /**
   * The registry's data was lost (its generation changed or vanished: Redis flushed, restarted
   * empty, failed over to an empty replica): nothing in Redis knows this pod's streams any more.
   */
  onRegistryLost(): void;
  /** The changed delivery positions, written with each renewal; `written()` once they are. */
  checkpoints?(): { checkpoints: Checkpoint[]; written(): void };
  /** How many positions a renewal wrote. */
  onCheckpointsWritten?(count: number): void;
}

/**
 * This process's ownership lease: one instance number with a deadline in Redis, renewed every
 * third of the lease. `remainingMs()` is the fence: how long this process may still send, measured
 * on its own monotonic clock from *before* the renewal it last saw succeed. When Redis reports the
 * lease gone, the process drops everything it owned and registers as a new instance; live pods
 * (including this one) then take the old instance's connections over. The renewal also writes the
 * changed delivery positions (one script call), and compares the registry's generation with the
 * one this process registered under: another one (or none) means the registry's data was lost.
 */
export class PodLease {
  private current: string | null = null;
  private generation = '';
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  private stopped = false;

  constructor(private readonly opts: PodLeaseOptions) {}

  get instance(): string | null {
    return this.current;
  }

  /** How often the lease is renewed: a third of it. */
  get renewIntervalMs(): number {
    return Math.max(100, Math.floor(this.opts.leaseMs / 3));
  }

  /** How long this process may still send (0 = not at all). */
  remainingMs(): number {
    if (this.current === null) return 0;
    return Math.max(0, this.validUntil - performance.now());
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.acquire();
    this.timer = setInterval(() => void this.renew(), this.renewIntervalMs);
  }

  /** Stops renewing and ends the lease in Redis at once (the caller stopped sending first). */
  async release(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const instance = this.current;
    this.current = null;
    this.validUntil = 0;
    if (instance !== null) await this.opts.store.releaseLease(instance);
  }

  /** Stops renewing without touching Redis (tests: behave like a frozen or killed process). */
  halt(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async acquire(): Promise<void> {
    const sentAt = performance.now();
    const { instance, generation } = await this.opts.store.registerInstance(this.opts.podId, this.opts.gateway, this.opts.leaseMs);
    this.current = instance;
    this.generation = generation;
    this.validUntil = sentAt + this.opts.leaseMs - LEASE_SAFETY_MS;
    this.opts.logger.info({ instance }, 'ownership lease acquired');
    await this.opts.onAcquired(instance);
  }

  /** One renewal now (the timer calls it every renewIntervalMs; tests call it after halt()). */
  async renew(): Promise<void> {
    if (this.renewing || (this.stopped && this.current === null)) return;
    this.renewing = true;
    const instance = this.current;
    try {
      if (instance === null) {
        await this.acquire();
        return;
      }
      const sentAt = performance.now();
      const batch = this.opts.checkpoints?.();
      const renewal = await this.opts.store.renew(instance, this.opts.leaseMs, batch?.checkpoints ?? []);
      if (this.current !== instance) return;
      if (renewal.generation !== this.generation) {
        this.opts.logger.error({ instance, was: this.generation, now: renewal.generation }, 'the registry was lost: closing every stream this pod served');
        this.current = null;
        this.validUntil = 0;
        this.opts.onRegistryLost();
        if (!this.stopped) await this.acquire();
      } else if (renewal.renewed) {
        this.validUntil = sentAt + this.opts.leaseMs - LEASE_SAFETY_MS;
        batch?.written();
        if (renewal.written > 0) this.opts.onCheckpointsWritten?.(renewal.written);
      } else {
        this.opts.logger.warn({ instance }, 'ownership lease lost: dropping every owned connection');
        this.current = null;
        this.validUntil = 0;
        this.opts.onLost();
        if (!this.stopped) await this.acquire();
      }
    } catch (err) {
      // Redis unreachable: keep trying; the fence closes by itself when the lease runs out locally.
      this.opts.logger.warn({ err: (err as Error).message, instance }, 'ownership lease renewal failed');
    } finally {
      this.renewing = false;
    }
  }
}
