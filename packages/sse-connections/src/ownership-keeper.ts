import { performance } from 'node:perf_hooks';
import type { Logger } from '@iotsupport/observability';
import { OwnershipLostError, type GatewayTopology, type OwnedConnection, type OwnershipStore } from '@iotsupport/realtime-state';
import type { ForwardingMetrics } from './metrics.js';
import type { OwnedConnections } from './owned-connections.js';
import { LEASE_SAFETY_MS, type PodLease } from './pod-lease.js';

export interface KeeperOptions {
  store: OwnershipStore;
  lease: PodLease;
  owned: OwnedConnections;
  metrics: ForwardingMetrics;
  logger: Logger;
  podId: string;
  gatewayUrl: string;
  topology: GatewayTopology;
  leaseMs: number;
  probeIntervalMs: number;
  /** Per-pod topology: a dead pod's connection held by another gateway is closed there, not adopted. */
  closeForeign(conn: OwnedConnection): Promise<void>;
  /** Connections newly owned (or re-read): their entity channels must be listened to before this resolves. */
  settle(owned: OwnedConnection[]): Promise<void>;
  /**
   * Called synchronously right after the connections are recorded as owned (before any batch can
   * reach them): delivery starts from their recorded positions. Resolves once those replays ended.
   */
  resume(owned: OwnedConnection[]): Promise<void>;
  /** Connections this process no longer owns. */
  dropped(requestIds: string[]): void;
  takeoverIntervalMs?: number;
  reconcileIntervalMs?: number;
  orphanIntervalMs?: number;
}

const PAGE = 500;

/**
 * Keeps this process's share of the connections right:
 * - claims a connection when its connect callback lands here (`claim`);
 * - takes over the connections of pods whose lease ran out, every fraction of a lease;
 * - reconciles what it believes it owns with Redis (a missed notice can never leave it sending to
 *   a connection it lost, or deaf to an entity its connection watches) — every few seconds;
 * - adopts connections nobody took (their receiving pod died before claiming) — the safety net.
 */
export class OwnershipKeeper {
  private readonly timers: NodeJS.Timeout[] = [];
  private taking = false;
  private running = { takeover: false, reconcile: false, orphans: false };

  constructor(private readonly opts: KeeperOptions) {}

  start(): void {
    this.taking = true;
    const every = (ms: number, job: keyof typeof this.running, fn: () => Promise<void>) =>
      this.timers.push(setInterval(() => void this.guarded(job, fn), ms));
    every(this.opts.takeoverIntervalMs ?? Math.min(500, Math.max(100, this.opts.leaseMs / 6)), 'takeover', () => this.takeOverDead());
    every(this.opts.reconcileIntervalMs ?? 5000, 'reconcile', () => this.reconcile());
    every(this.opts.orphanIntervalMs ?? 5000, 'orphans', () => this.adoptOrphans());
  }

  /** One renewal interval and the lease's safety margin: see adopt(). */
  private get graceMs(): number {
    return this.opts.lease.renewIntervalMs + LEASE_SAFETY_MS;
  }

  /** Draining: no more claims or take-overs. */
  stopTaking(): void {
    this.taking = false;
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Runs a take-over pass now (a pod announced it released its lease). */
  takeOverSoon(): void {
    void this.guarded('takeover', () => this.takeOverDead());
  }

  /** The connect callback of these connections landed here: own them when nobody live does. */
  async claim(wanted: Array<{ requestId: string; token?: string }>): Promise<OwnedConnection[]> {
    const instance = this.opts.lease.instance;
    if (!this.taking || instance === null || wanted.length === 0) return [];
    const taken = await this.take(instance, wanted);
    if (taken.length > 0) await this.adopt(taken, 'claim');
    return taken;
  }

  private async take(instance: string, wanted: Array<{ requestId: string; token?: string }>): Promise<OwnedConnection[]> {
    return this.opts.store.take(instance, this.opts.podId, this.opts.topology, this.opts.gatewayUrl, wanted);
  }

  /**
   * Records connections as owned here. `graceMs`: nothing is sent to them before it has passed —
   * after taking over from an instance that did not release its lease itself, in case that
   * instance renewed once more than Redis remembers (a failover losing the last write): its own
   * fence then still ends within one renewal interval.
   */
  private async adopt(
    conns: OwnedConnection[],
    why: 'claim' | 'takeover' | 'orphan' | 'reconcile',
    graceMs = 0,
    readsBefore?: ReadonlyMap<string, number>,
  ): Promise<void> {
    const now = performance.now();
    if (why === 'reconcile') {
      // Reconcile only refreshes what is still owned here: a connection dropped while its
      // take-connections call was in flight (a 404, a disconnect) must not come back to life, and
      // one whose subscriptions were re-read meanwhile (an unsubscribe's sync) keeps that fresher read.
      conns = conns.filter((conn) => {
        const owned = this.opts.owned.get(conn.requestId);
        return owned?.token === conn.token && owned.entitiesRead === readsBefore?.get(conn.requestId);
      });
    }
    for (const conn of conns) {
      const known = this.opts.owned.get(conn.requestId)?.token === conn.token;
      const owned = this.opts.owned.upsert(conn, now);
      if (!known && graceMs > 0) owned.sendableAt = now + graceMs;
      // Spread the first probes of a batch over the interval instead of probing all at once.
      if (why !== 'reconcile') owned.probedAt = now - Math.random() * this.opts.probeIntervalMs;
    }
    this.opts.metrics.ownedConnections.set(this.opts.owned.size);
    const replayed = this.opts.resume(conns);
    await this.opts.settle(conns);
    if (why === 'takeover' || why === 'orphan') {
      // Not awaited by the pass: the next dead pod's connections need not wait for these replays.
      void replayed.then(() => this.opts.metrics.takeoverReplay.observe((performance.now() - now) / 1000));
    }
  }

  private async takeOverDead(): Promise<void> {
    const instance = this.opts.lease.instance;
    if (!this.taking || instance === null) return;
    for (;;) {
      const taken = await this.opts.store.takeOverDead(instance, this.opts.podId, PAGE);
      if (!taken) return;
      const adopt: OwnedConnection[] = [];
      const close: OwnedConnection[] = [];
      for (const conn of taken.connections) {
        (this.opts.topology === 'per-pod' && conn.gateway !== this.opts.gatewayUrl ? close : adopt).push(conn);
      }
      const gapMs = taken.deadLeaseUntilMs > 0 ? Date.now() - (taken.deadLeaseUntilMs - this.opts.leaseMs) : undefined;
      if (gapMs !== undefined && taken.connections.length > 0) this.opts.metrics.takeoverGap.observe(gapMs / 1000);
      this.opts.logger.info(
        { dead: taken.deadInstance, deadPod: taken.deadInfo?.pod, adopted: adopt.length, closed: close.length, gapMs },
        'took over the connections of a dead or drained pod',
      );
      this.opts.metrics.takeovers.inc({ action: 'adopt' }, adopt.length);
      this.opts.metrics.takeovers.inc({ action: 'close' }, close.length);
      const released = taken.deadInfo?.released_at !== undefined;
      if (adopt.length > 0) await this.adopt(adopt, 'takeover', released ? 0 : this.graceMs);
      for (const conn of close) this.closeInBackground(conn);
    }
  }

  /**
   * Not awaited: with the dead pod's gateway unreachable each close takes every retry's timeout, and
   * the take-over pass (one at a time) would keep the next dead pod's connections waiting meanwhile.
   */
  private closeInBackground(conn: OwnedConnection): void {
    this.opts.closeForeign(conn).catch((err: Error) =>
      this.opts.logger.warn({ err: err.message, requestId: conn.requestId }, 'closing a dead pod’s connection at its gateway failed'),
    );
  }

  /** Re-reads every owned connection through take-connections: what comes back is ours, with its entities. */
  private async reconcile(): Promise<void> {
    const instance = this.opts.lease.instance;
    if (!this.taking || instance === null) return;
    const mine = [...this.opts.owned.all()].map((o) => ({ requestId: o.requestId, token: o.token }));
    const kept = new Set<string>();
    for (let i = 0; i < mine.length; i += PAGE) {
      const wanted = mine.slice(i, i + PAGE);
      const readsBefore = new Map(wanted.map((m) => [m.requestId, this.opts.owned.get(m.requestId)?.entitiesRead ?? -1]));
      const page = await this.take(instance, wanted);
      for (const conn of page) kept.add(conn.requestId);
      await this.adopt(page, 'reconcile', 0, readsBefore);
    }
    const lost = mine.filter((m) => !kept.has(m.requestId) && this.opts.owned.get(m.requestId)?.token === m.token).map((m) => m.requestId);
    if (lost.length > 0) {
      this.opts.logger.info({ count: lost.length }, 'reconcile: connections no longer owned here');
      this.opts.dropped(lost);
    }
  }

  private async adoptOrphans(): Promise<void> {
    const instance = this.opts.lease.instance;
    if (!this.taking || instance === null) return;
    let rank = 0;
    do {
      // Younger than a lease: their receiving pod is still claiming them.
      const page = await this.opts.store.findUnowned(rank, PAGE, this.opts.leaseMs);
      if (page.requestIds.length > 0) {
        const taken = await this.take(instance, page.requestIds.map((requestId) => ({ requestId })));
        if (taken.length > 0) {
          this.opts.logger.info({ count: taken.length }, 'adopted connections nobody owned');
          await this.adopt(taken, 'orphan', this.graceMs);
        }
      }
      rank = page.next;
    } while (rank !== 0 && this.taking);
  }

  private async guarded(job: keyof typeof this.running, fn: () => Promise<void>): Promise<void> {
    if (this.running[job]) return;
    this.running[job] = true;
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof OwnershipLostError)) this.opts.logger.warn({ err: (err as Error).message, job }, 'ownership job failed');
    } finally {
      this.running[job] = false;
    }
  }
}
