import type { ConnectionRegistry } from '@iotsupport/realtime-state';
import type { GatewayControl, GatewayProbeAnswer } from './gateway-control.js';

/**
 * The removals a sweep makes. On a pod they are the ConnectionService's (each storage step, then
 * the owner forgets the connection); a bare ConnectionRegistry has the same shape (storage only).
 */
export type SweepRemovals = Pick<ConnectionRegistry, 'sweepExpired' | 'gatewayGone' | 'dropUnconfirmed'>;

export interface SweeperOptions {
  /** Storage reads and the sweep lock. */
  registry: ConnectionRegistry;
  removals: SweepRemovals;
  gateway: GatewayControl;
  podId: string;
  /** REGISTRY_SWEEP_INTERVAL_SECONDS in ms. */
  intervalMs: number;
  /**
   * A connection the gateway has not confirmed for this long is probed by the sweep (owners probe
   * theirs every CONNECTION_PROBE_INTERVAL_SECONDS, so this is 2 × that): 404 → removed at once.
   * See docs/registry.md, "No orphans".
   */
  livenessWindowMs: number;
  /**
   * An unreachable answer (5xx, timeout, refused) removes a connection only once it has stayed
   * unconfirmed for this long (4 × the probe interval): one failed probe may be a busy gateway or a
   * loaded event loop, not a dead stream, so it takes several failed rounds in a row. Must be
   * ≥ livenessWindowMs. Default: 2 × livenessWindowMs.
   */
  unreachableWindowMs?: number;
  /** Connections handled per round and pass (the rest wait for the next round). */
  batch?: number;
  /** Probes in flight at once. */
  concurrency?: number;
  onError?: (err: Error) => void;
}

export interface SweepReport {
  /** Expired bindings removed (and closed at their gateway). */
  expired: number;
  /** Probes sent (0 when another pod held this round's lock; one per unanswering gateway and round). */
  probed: number;
  /** Of those: removed because the gateway said 404, or could not be reached for the unreachable window. */
  removed: number;
}

/**
 * The periodic clean-up every api pod runs. Two passes:
 * 1. expired bindings — the atomic sweep-expired script, no lock needed: each expired connection
 *    is handed to exactly one pod, which closes it at its gateway;
 * 2. liveness — under a Redis lock (SET NX PX, one pod per round, never released early so rounds
 *    stay an interval apart): connections unconfirmed for `livenessWindowMs` are probed; alive →
 *    confirmed, 404 → gateway-gone, unreachable → kept (probed again next round) until unconfirmed
 *    for `unreachableWindowMs`, then dropped unless confirmed meanwhile, with a best-effort close at
 *    its gateway (the stream may still be open there).
 */
export class RegistrySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | null = null;
  /** Best-effort closes of dropped connections, not awaited by the round (the gateway is slow or down). */
  private readonly closing = new Set<Promise<unknown>>();

  constructor(private readonly opts: SweeperOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return; // a slow round is never overlapped by the next
      this.running = this.sweepOnce()
        .catch((err: Error) => this.opts.onError?.(err))
        .finally(() => {
          this.running = null;
        });
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await Promise.allSettled([...this.closing]);
  }

  async sweepOnce(): Promise<SweepReport> {
    const { registry, removals, gateway } = this.opts;
    const batch = this.opts.batch ?? 500;
    const expired = await removals.sweepExpired(batch);
    await inBatches(expired, this.opts.concurrency ?? 16, (c) => gateway.close(c.token, c.gateway));

    const report: SweepReport = { expired: expired.length, probed: 0, removed: 0 };
    const redis = registry.redis;
    const locked = await redis.set(registry.keys.sweepLock, this.opts.podId, 'PX', Math.max(1, this.opts.intervalMs - 50), 'NX');
    if (locked !== 'OK') return report;

    const [seconds, micros] = await redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const cutoff = now - this.opts.livenessWindowMs;
    const dropCutoff = now - Math.max(this.opts.unreachableWindowMs ?? 2 * this.opts.livenessWindowMs, this.opts.livenessWindowMs);
    const suspects = await registry.unconfirmedSince(cutoff, batch);
    // A gateway that did not answer one probe is not asked again this round: a hung gateway holding
    // many streams would otherwise cost a probe timeout per batch of its connections, stretching
    // the round (and every orphan bound) and delaying probes to healthy gateways behind them.
    // Its connections are still only dropped after the unreachable window.
    const unanswered = new Set<string>();
    await inBatches(suspects, this.opts.concurrency ?? 16, async (requestId) => {
      const conn = await registry.getConnection(requestId);
      if (!conn) return;
      let answer: GatewayProbeAnswer = 'unreachable';
      if (!unanswered.has(conn.gateway)) {
        report.probed += 1;
        answer = await gateway.probe(conn.token, conn.gateway);
        if (answer === 'unreachable') unanswered.add(conn.gateway);
      }
      if (answer === 'alive') await registry.markSeen(requestId, conn.token);
      else if (answer === 'gone') report.removed += (await removals.gatewayGone(requestId, conn.token)).removed ? 1 : 0;
      else if (conn.lastSeenAtMs < dropCutoff && (await removals.dropUnconfirmed(requestId, conn.token, dropCutoff))) {
        report.removed += 1;
        this.closeInBackground(conn.token, conn.gateway);
      }
    });
    return report;
  }

  /** The gateway may only have been slow: ask it to close the stream we no longer track (failures ignored). */
  private closeInBackground(token: string, gatewayUrl: string): void {
    const pending = this.opts.gateway
      .close(token, gatewayUrl)
      .catch((err: Error) => this.opts.onError?.(err))
      .finally(() => this.closing.delete(pending));
    this.closing.add(pending);
  }
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    await Promise.allSettled(items.slice(i, i + size).map(fn));
  }
}
