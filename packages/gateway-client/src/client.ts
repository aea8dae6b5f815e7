import Denque from 'denque';
import { checkBodySize, prepareEvent, type GatewayEvent } from './body.js';
import { ConnectionQueues, isLoss, type Connection, type NewItem } from './connection-queues.js';
import { gatewayMetrics, type GatewayMetrics } from './metrics.js';
import { GatewayTransport, retryDelayMs } from './transport.js';
import type { GatewayClientOptions, SendOptions, SendOutcome } from './types.js';

export type { GatewayClientOptions, SendOptions, SendOutcome, SendStatus } from './types.js';

/**
 * The pooled, bounded, per-connection-ordered sender to the gateway's `POST /internal/send`.
 *
 * - Each connection has its own FIFO and at most one request in flight, so its events arrive in
 *   order; connections take turns for the `concurrency` request slots (round robin), so a slow
 *   connection holds at most one slot and never delays the others (no head-of-line blocking).
 * - A full queue drops the new event, counts it, and the next accepted event carries `dropped`.
 * - 404 → `onGone(token)` and the connection's queue is discarded; 5xx / timeout → bounded retry
 *   with backoff, then the event is dropped (counted, and marked on the next event).
 * - `send()` never rejects: it resolves with how the item ended. Bad input throws synchronously.
 *
 * The queues and their drop accounting are in connection-queues.ts, the HTTP side in transport.ts;
 * this class schedules between them.
 */
export class GatewayClient {
  private readonly queues: ConnectionQueues;
  private readonly transport: GatewayTransport;
  private readonly ready = new Denque<Connection>();
  private readonly metrics: GatewayMetrics;
  private readonly retryBaseDelayMs: number;
  private readonly minFenceMs: number;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private active = 0;
  private destroyed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: GatewayClientOptions) {
    this.metrics = gatewayMetrics(opts.registry);
    this.queues = new ConnectionQueues(this.metrics, opts.queueLimit, opts.queueBytes);
    this.transport = new GatewayTransport(opts.concurrency, this.metrics);
    this.retryBaseDelayMs = opts.retryBaseDelayMs ?? 50;
    this.minFenceMs = opts.minFenceMs ?? 100;
    this.transport.poolFor(opts.baseUrl);
  }

  /**
   * Queues one event for the connection. Throws on a reserved name, non-object data or an oversize
   * body. An event from prepareEvent() is not checked or serialised again: one event sent to many
   * connections costs its serialisation once.
   */
  send(token: string, event: GatewayEvent, options: SendOptions = {}): Promise<SendOutcome> {
    const prepared = prepareEvent(event);
    const tokenJson = this.queues.get(token)?.tokenJson ?? JSON.stringify(token);
    checkBodySize(tokenJson, prepared);
    const conn = this.queues.open(token, tokenJson);
    const service = options.service ?? event.name ?? 'message';
    if (this.destroyed || conn.closing) {
      this.metrics.dropped.inc({ service, reason: 'discarded' });
      return Promise.resolve({ status: 'discarded', attempts: 0 });
    }
    if (!this.queues.hasRoom(conn, event.data.length)) {
      conn.pendingDropped += 1;
      this.metrics.dropped.inc({ service, reason: 'queue_full' });
      return Promise.resolve({ status: 'dropped', attempts: 0 });
    }
    const droppedBefore = this.queues.takePendingDropped(conn);
    // The queue holds the shared event; its body is assembled (not serialised) at each attempt.
    return this.push(conn, { kind: 'event', event: prepared, service, ...this.target(options), droppedBefore });
  }

  /**
   * 200 if the gateway still holds the connection, 404 (→ `onGone`) if not. Not limited by the
   * queue. Empty, or with a sign-of-life `event` for the browser (an unsent one is no drop).
   */
  probe(token: string, options: SendOptions & { event?: GatewayEvent } = {}): Promise<SendOutcome> {
    const event = options.event ? prepareEvent(options.event) : undefined;
    const tokenJson = this.queues.get(token)?.tokenJson ?? JSON.stringify(token);
    if (event) checkBodySize(tokenJson, event);
    const conn = this.queues.open(token, tokenJson);
    if (this.destroyed || conn.closing) return Promise.resolve({ status: 'discarded', attempts: 0 });
    return this.push(conn, { kind: 'probe', event, service: options.service ?? 'probe', ...this.target(options), droppedBefore: 0 });
  }

  /**
   * Ends the connection at the gateway (`close: true`) after what is already queued for it. The
   * gateway calls our disconnect callback before it answers. Nothing queued later is sent.
   */
  close(token: string, options: SendOptions & { event?: GatewayEvent } = {}): Promise<SendOutcome> {
    const event = options.event ? prepareEvent(options.event) : undefined;
    const tokenJson = this.queues.get(token)?.tokenJson ?? JSON.stringify(token);
    if (event) checkBodySize(tokenJson, event);
    const conn = this.queues.open(token, tokenJson);
    if (this.destroyed || conn.closing) return Promise.resolve({ status: 'discarded', attempts: 0 });
    conn.closing = true;
    const droppedBefore = event ? conn.pendingDropped : 0;
    return this.push(conn, { kind: 'close', event, service: options.service ?? 'close', ...this.target(options), droppedBefore });
  }

  /**
   * Forgets a connection: queued items resolve as `discarded` (or `fenced`), an attempt in flight
   * finishes on its own. For a disconnect, or when this pod lost the connection's ownership.
   */
  discard(token: string, reason: 'discarded' | 'fenced' = 'discarded'): number {
    const conn = this.queues.get(token);
    if (!conn) return 0;
    this.cancelRetry(conn);
    const n = this.queues.dropQueued(conn, reason);
    conn.pendingDropped = 0;
    this.queues.forget(conn);
    this.settleConnection(conn);
    return n;
  }

  /** Events queued on this pod, the ones in flight included. */
  get queueDepth(): number {
    return this.queues.queued;
  }

  /** Connections this client keeps state for: ones with something queued or a drop still to report. */
  get trackedConnections(): number {
    return this.queues.size;
  }

  /** Events waiting for one connection (not counting the one in flight). */
  queueLength(token: string): number {
    const conn = this.queues.get(token);
    return conn ? this.queues.waiting(conn) : 0;
  }

  /** Resolves once nothing is queued or in flight (shutdown: "send what is queued"). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Discards everything still queued and closes the pools. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    for (const conn of this.queues.all()) {
      this.cancelRetry(conn);
      this.queues.dropQueued(conn, 'discarded');
      this.queues.forget(conn);
      this.settleConnection(conn);
    }
    await this.transport.destroy();
  }

  // ---- scheduling ------------------------------------------------------------------------------

  private target(options: SendOptions): { gatewayUrl: string; fenced: boolean; resent: boolean } {
    return { gatewayUrl: options.gatewayUrl ?? this.opts.baseUrl, fenced: options.fenced ?? false, resent: options.resent ?? false };
  }

  private push(conn: Connection, item: NewItem): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      this.queues.add(conn, item, resolve);
      this.schedule(conn);
      this.pump();
    });
  }

  private schedule(conn: Connection): void {
    if (conn.busy || conn.scheduled || conn.items.isEmpty()) return;
    conn.scheduled = true;
    this.ready.push(conn);
  }

  private pump(): void {
    while (this.active < this.opts.concurrency && !this.ready.isEmpty()) {
      const conn = this.ready.shift()!;
      conn.scheduled = false;
      if (conn.busy || conn.items.isEmpty() || !this.queues.isCurrent(conn)) continue;
      void this.attempt(conn);
    }
  }

  private async attempt(conn: Connection): Promise<void> {
    const item = conn.items.peekFront()!;
    const fenceMs = item.fenced && this.opts.fence ? this.opts.fence(conn.token) : Number.POSITIVE_INFINITY;
    if (fenceMs === null || fenceMs < this.minFenceMs) {
      // Not ours (any more): this item is never sent; the next one is judged on its own.
      this.queues.finishHead(conn, { status: 'fenced', attempts: 0 }, 'fenced');
      if (isLoss(item, 'fenced')) this.metrics.dropped.inc({ service: item.service, reason: 'fenced' });
      // The gap this event was to report is still unreported: the next event carries it.
      if (item.droppedBefore > 0) this.queues.carryDrop(conn, item.droppedBefore);
      if (item.resent && item.kind === 'event') this.queues.endResentBehind(conn, 'fenced');
      this.settleConnection(conn);
      this.pump();
      return;
    }
    this.queues.unwait(conn, item);
    conn.busy = true;
    this.active += 1;
    this.metrics.inFlight.inc();
    item.attempts += 1;
    const timeoutMs = Math.max(1, Math.floor(Math.min(this.opts.timeoutMs, fenceMs - this.minFenceMs / 2)));
    const result = await this.transport.post(conn.tokenJson, item, timeoutMs);
    this.active -= 1;
    this.metrics.inFlight.dec();

    if (result.kind === 'retryable' && item.attempts <= this.opts.retries && !this.destroyed && this.queues.isCurrent(conn)) {
      // Stays busy while it waits, so nothing behind it overtakes; the request slot is free meanwhile.
      this.metrics.retries.inc({ service: item.service });
      conn.retryTimer = setTimeout(() => {
        this.retryTimers.delete(conn.retryTimer!);
        conn.retryTimer = undefined;
        conn.busy = false;
        this.settleConnection(conn);
        this.pump();
      }, retryDelayMs(this.retryBaseDelayMs, item.attempts));
      this.retryTimers.add(conn.retryTimer);
      this.pump();
      return;
    }
    conn.busy = false;
    if (result.kind === 'ok') {
      this.queues.finishHead(conn, { status: 'ok', httpStatus: result.status!, attempts: item.attempts }, 'ok');
      if (item.kind === 'close') this.queues.forget(conn);
    } else if (result.kind === 'gone') {
      this.queues.finishHead(conn, { status: 'not_found', httpStatus: 404, attempts: item.attempts }, 'not_found');
      this.queues.dropQueued(conn, 'discarded', 'gone');
      this.queues.forget(conn);
      this.opts.onGone?.(conn.token);
    } else {
      const status = result.kind === 'rejected' ? 'rejected' : 'failed';
      const outcome: SendOutcome = { status, attempts: item.attempts };
      if (result.status !== undefined) outcome.httpStatus = result.status;
      this.queues.finishHead(conn, outcome, status);
      // Only a lost event is a drop the browser must hear of (isLoss): not a probe, not a bare close.
      const lost = isLoss(item, status);
      if (lost) this.metrics.dropped.inc({ service: item.service, reason: status === 'rejected' ? 'rejected' : 'retries_exhausted' });
      if (lost || item.droppedBefore > 0) this.queues.carryDrop(conn, (lost ? 1 : 0) + item.droppedBefore);
      if (item.resent && item.kind === 'event' && status === 'failed') this.queues.endResentBehind(conn, 'failed');
    }
    this.settleConnection(conn);
    this.pump();
  }

  /** A head waiting to be retried is not in flight: it can be dropped like the rest. */
  private cancelRetry(conn: Connection): void {
    if (!conn.retryTimer) return;
    clearTimeout(conn.retryTimer);
    this.retryTimers.delete(conn.retryTimer);
    conn.retryTimer = undefined;
    conn.busy = false;
  }

  /** Schedules the next item, or forgets an idle connection that has nothing left to report. */
  private settleConnection(conn: Connection): void {
    if (!conn.items.isEmpty()) this.schedule(conn);
    else this.queues.releaseIfIdle(conn);
    if (this.isIdle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private isIdle(): boolean {
    return this.queues.queued === 0 && this.active === 0 && this.retryTimers.size === 0;
  }
}
