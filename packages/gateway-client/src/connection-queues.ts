import Denque from 'denque';
import type { GatewayMetrics } from './metrics.js';
import type { SendRequest } from './transport.js';
import type { SendOutcome } from './types.js';

export interface Item extends SendRequest {
  fenced: boolean;
  /** SendOptions.resent: a failed or fenced outcome is no loss (the sender sends it again). */
  resent: boolean;
  /** Event data characters, counted in the connection's waitingBytes until the first attempt. */
  bytes: number;
  waitingCounted: boolean;
  attempts: number;
  resolve: (outcome: SendOutcome) => void;
}

export type NewItem = Omit<Item, 'attempts' | 'resolve' | 'bytes' | 'waitingCounted'>;

/**
 * Whether an item that ended `status` unsent lost something the browser must hear of (a drop:
 * counted, and marked on the next event). A probe's sign-of-life event is not a loss (the next
 * probe follows), nor is an event its sender sends again (`resent`) after a failed or fenced send.
 */
export function isLoss(item: Pick<Item, 'kind' | 'event' | 'resent'>, status: string): boolean {
  if (item.event === undefined || item.kind === 'probe') return false;
  return !(item.resent && (status === 'failed' || status === 'fenced'));
}

export interface Connection {
  token: string;
  /** The token as JSON text, as every body of the connection starts with it. */
  tokenJson: string;
  items: Denque<Item>;
  /** An attempt is in flight or waiting out a retry delay: the next item must wait (FIFO). */
  busy: boolean;
  /** In the ready queue already. */
  scheduled: boolean;
  /** Drops not yet reported to the browser; the next accepted event carries them. */
  pendingDropped: number;
  /** A close was queued: nothing after it is sent. */
  closing: boolean;
  /** Event data characters waiting (the item in flight not counted). */
  waitingBytes: number;
  /** Set while the head waits out a retry delay. */
  retryTimer: NodeJS.Timeout | undefined;
}

const DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024;

/**
 * Every connection's FIFO of items and its drop accounting: how many items wait (in count and in
 * bytes), the `dropped` gap a lost event leaves for the next one to report, and the queue-depth,
 * sent and dropped metrics. Scheduling and sending are the client's.
 */
export class ConnectionQueues {
  private readonly connections = new Map<string, Connection>();
  private queuedItems = 0;
  private readonly queueBytes: number;

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly queueLimit: number,
    queueBytes: number | undefined,
  ) {
    this.queueBytes = queueBytes ?? DEFAULT_QUEUE_BYTES;
  }

  /** Items queued over all connections, the ones in flight included. */
  get queued(): number {
    return this.queuedItems;
  }

  /** Connections with state here (a queue, or a gap still to report). */
  get size(): number {
    return this.connections.size;
  }

  get(token: string): Connection | undefined {
    return this.connections.get(token);
  }

  /** The connection's queue, created on first use. */
  open(token: string, tokenJson = JSON.stringify(token)): Connection {
    let conn = this.connections.get(token);
    if (!conn) {
      conn = { token, tokenJson, items: new Denque<Item>(), busy: false, scheduled: false, pendingDropped: 0, closing: false, retryTimer: undefined, waitingBytes: 0 };
      this.connections.set(token, conn);
    }
    return conn;
  }

  /** Still the live queue for its token (not forgotten, nor replaced by a newer one). */
  isCurrent(conn: Connection): boolean {
    return this.connections.get(conn.token) === conn;
  }

  all(): Connection[] {
    return [...this.connections.values()];
  }

  /** Items waiting (not counting the one in flight). */
  waiting(conn: Connection): number {
    return conn.items.length - (conn.busy ? 1 : 0);
  }

  /** An event of `dataLength` characters fits: under the item limit, and under the byte limit unless the queue is empty. */
  hasRoom(conn: Connection, dataLength: number): boolean {
    const waiting = this.waiting(conn);
    return !(waiting >= this.queueLimit || (waiting > 0 && conn.waitingBytes + dataLength > this.queueBytes));
  }

  /** The gap the next accepted event reports; reset, since that event now carries it. */
  takePendingDropped(conn: Connection): number {
    const dropped = conn.pendingDropped;
    conn.pendingDropped = 0;
    return dropped;
  }

  add(conn: Connection, partial: NewItem, resolve: (outcome: SendOutcome) => void): void {
    const bytes = partial.event?.data.length ?? 0;
    conn.waitingBytes += bytes;
    conn.items.push({ ...partial, bytes, waitingCounted: true, attempts: 0, resolve });
    this.queuedItems += 1;
    this.metrics.queueDepth.inc();
  }

  /** Removes the head item (in flight until now) and resolves it. */
  finishHead(conn: Connection, outcome: SendOutcome, status: string): void {
    const item = conn.items.shift()!;
    this.unwait(conn, item);
    this.queuedItems -= 1;
    this.metrics.queueDepth.dec();
    this.metrics.sent.inc({ service: item.service, status });
    item.resolve(outcome);
  }

  /** A lost event's gap is reported by the next event still queued, or by the next one accepted. */
  carryDrop(conn: Connection, count: number): void {
    for (let i = 0; i < conn.items.length; i++) {
      const next = conn.items.peekAt(i)!;
      if (next.kind !== 'probe' && next.event) {
        next.droppedBefore += count;
        return;
      }
    }
    conn.pendingDropped += count;
  }

  dropQueued(conn: Connection, status: 'discarded' | 'fenced', reason: string = status): number {
    // The head stays while its attempt is in flight; it resolves when that attempt ends.
    const keep = conn.busy ? 1 : 0;
    let n = 0;
    while (conn.items.length > keep) {
      const item = conn.items.pop()!;
      this.unwait(conn, item);
      this.queuedItems -= 1;
      this.metrics.queueDepth.dec();
      if (isLoss(item, status)) this.metrics.dropped.inc({ service: item.service, reason });
      item.resolve({ status, attempts: item.attempts });
      n += 1;
    }
    return n;
  }

  /**
   * After a `resent` event failed for good or was fenced: the `resent` events waiting behind it end
   * the same way, unsent. Their sender sends them again after the failed one, in order; sending them
   * now would put their lines before the failed one's in the browser. Other items keep their place.
   * Call with the head already finished (nothing in flight).
   */
  endResentBehind(conn: Connection, status: 'failed' | 'fenced'): void {
    const items = conn.items.toArray();
    if (!items.some((item) => item.resent && item.kind === 'event')) return;
    conn.items.clear();
    let carried = 0;
    for (const item of items) {
      if (!(item.resent && item.kind === 'event')) {
        conn.items.push(item);
        continue;
      }
      this.unwait(conn, item);
      this.queuedItems -= 1;
      this.metrics.queueDepth.dec();
      this.metrics.sent.inc({ service: item.service, status });
      carried += item.droppedBefore;
      item.resolve({ status, attempts: item.attempts });
    }
    if (carried > 0) this.carryDrop(conn, carried);
  }

  /** The item leaves the waiting part of the queue (its first attempt starts, or it is dropped). */
  unwait(conn: Connection, item: Item): void {
    if (!item.waitingCounted) return;
    conn.waitingBytes -= item.bytes;
    item.waitingCounted = false;
  }

  /** Nothing more is accepted for this queue; a later send for the token starts a new one. */
  forget(conn: Connection): void {
    conn.closing = true;
    if (this.isCurrent(conn)) this.connections.delete(conn.token);
  }

  /**
   * Forgets an idle connection that has nothing left to report. A closing one never sends again, so
   * a gap it still holds has nobody to go to: without this, every close that failed (gateway
   * unreachable) would keep its entry for good.
   */
  releaseIfIdle(conn: Connection): void {
    if (conn.items.isEmpty() && !conn.busy && (conn.pendingDropped === 0 || conn.closing) && this.isCurrent(conn)) {
      this.connections.delete(conn.token);
    }
  }
}
