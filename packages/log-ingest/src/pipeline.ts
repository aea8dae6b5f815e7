import type { Logger } from '@iotsupport/observability';
import { backoffDelayMs, sleepUnlessAborted, type BackoffPolicy } from './backoff.js';
import type { BulkStore } from './bulk-store.js';
import { storedBatchMessages, type StoredBatchPublisher } from './stored-batch-publisher.js';
import { payloadDigest } from './ids.js';
import { parseMqttMessage, type LogLine, type ParseMessageOptions, type ParsedMessage } from './log-message.js';
import type { IngestMetrics } from './metrics.js';

/** One MQTT delivery as the source hands it over. */
export interface IncomingMessage {
  payload: Uint8Array;
  receivedAtMs: number;
  /** Sends the PUBACK (a no-op for QoS 0 or when the connection it came on is gone). */
  ack(): void;
}

export interface PipelineOptions {
  parse: ParseMessageOptions;
  redisKeyPrefix: string;
  /** INGEST_BULK_MAX_LINES. */
  maxBatchLines: number;
  /** Undefined without ELASTICSEARCH_URL: lines are streamed, not stored. */
  store: Pick<BulkStore, 'store'> | undefined;
  publisher: Pick<StoredBatchPublisher, 'publish'>;
  /** Backoff after an unexpected failure of a batch (the batch is then tried again). */
  backoff: BackoffPolicy;
  /** Fires on a forced stop: the worker gives up and leaves the rest unacknowledged. */
  signal: AbortSignal;
  metrics: IngestMetrics;
  logger: Logger;
}

/** `_bulk` requests in flight at once (see `work`). */
const CONCURRENT_BATCHES = 2;

interface Entry {
  digest: string;
  /** Every delivery of this payload still to acknowledge (a redelivery joins the queued copy). */
  deliveries: IncomingMessage[];
  parsed: Promise<ParsedMessage>;
  /** Lines of this message already put in a batch. */
  taken: number;
  fullyTaken: boolean;
}

interface Slice {
  entry: Entry;
  message: ParsedMessage;
  from: number;
  to: number;
}

/**
 * Receive → parse → store → fan out → acknowledge, in receive order.
 *
 * Messages queue up as they arrive (the MQTT source keeps the queue within INGEST_MAX_INFLIGHT)
 * and are parsed right away. A batch is as many queued lines as fit in INGEST_BULK_MAX_LINES —
 * several messages, or part of a big one — stored with one `_bulk` and retried until every line is
 * accepted. Messages whose last line is then stored are fanned out to Redis in one pipeline and
 * acknowledged, batch after batch in receive order. A delivery whose payload is already
 * queued (a redelivery after a reconnect, or a byte-identical message) joins that entry instead of
 * queueing twice, and is acknowledged with it.
 */
export class IngestPipeline {
  private readonly queue: Entry[] = [];
  private readonly byDigest = new Map<string, Entry>();
  private running: Promise<void> | undefined;
  private readonly progressListeners: Array<() => void> = [];

  constructor(private readonly opts: PipelineOptions) {}

  /** Distinct messages accepted and not yet acknowledged. */
  get pendingMessages(): number {
    return this.queue.length;
  }

  /** Called after messages were acknowledged (room in the window, maybe idle). */
  onProgress(listener: () => void): void {
    this.progressListeners.push(listener);
  }

  accept(incoming: IncomingMessage): void {
    const { metrics } = this.opts;
    metrics.unackedMessages.inc();
    const digest = payloadDigest(incoming.payload);
    const queued = this.byDigest.get(digest);
    if (queued) {
      queued.deliveries.push(incoming);
      return;
    }
    const parsed = parseMqttMessage(incoming.payload, incoming.receivedAtMs, { ...this.opts.parse, digest }).then((message) => {
      metrics.messagesReceived.inc({ status: message.status });
      for (const [status, count] of Object.entries(message.lineCounts)) if (count > 0) metrics.linesReceived.inc({ status }, count);
      metrics.queueDepth.inc(message.lines.length);
      return message;
    });
    const entry: Entry = { digest, deliveries: [incoming], parsed, taken: 0, fullyTaken: false };
    this.queue.push(entry);
    this.byDigest.set(digest, entry);
    this.kick();
  }

  /** Resolves once every message accepted so far is acknowledged (or the signal aborted the work). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    this.running ??= this.work().finally(() => {
      this.running = undefined;
      if (!this.opts.signal.aborted && this.queue.some((e) => !e.fullyTaken)) this.kick();
    });
  }

  /**
   * Forms batches from the queue and runs up to CONCURRENT_BATCHES of them at once: while one
   * `_bulk` is in Elasticsearch the next is already being sent, so neither side waits on the
   * other. Fan-out and acknowledgements still happen strictly in receive order (each batch waits
   * for the one before it).
   */
  private async work(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    let previous: Promise<void> = Promise.resolve();
    while (!this.opts.signal.aborted) {
      if (inFlight.size >= CONCURRENT_BATCHES) {
        await Promise.race(inFlight);
        continue;
      }
      const slices = await this.takeBatch();
      if (slices.length === 0) {
        if (inFlight.size === 0) break;
        await Promise.race(inFlight);
        continue;
      }
      const task = this.runBatch(slices, previous);
      previous = task;
      const settled = task.then(
        () => undefined,
        () => undefined,
      );
      inFlight.add(settled);
      void settled.then(() => inFlight.delete(settled));
    }
    await Promise.all(inFlight);
    if (this.opts.signal.aborted && this.queue.length > 0) {
      this.opts.logger.warn({ unacknowledged: this.queue.length }, 'ingest stopped with messages unacknowledged; the broker redelivers them');
    }
  }

  /** Takes lines not yet in a batch from the head of the queue, up to maxBatchLines (a message may be split). */
  private async takeBatch(): Promise<Slice[]> {
    const slices: Slice[] = [];
    let room = this.opts.maxBatchLines;
    // A snapshot: a finishing batch removes entries from the head while this awaits parsing.
    for (const entry of [...this.queue]) {
      if (room === 0) break;
      if (entry.fullyTaken) continue;
      const message = await entry.parsed;
      const from = entry.taken;
      const to = Math.min(message.lines.length, from + room);
      entry.taken = to;
      entry.fullyTaken = to === message.lines.length;
      slices.push({ entry, message, from, to });
      room -= to - from;
      if (!entry.fullyTaken) break;
    }
    return slices;
  }

  private async runBatch(slices: Slice[], previous: Promise<void>): Promise<void> {
    const { metrics } = this.opts;
    const lines: LogLine[] = [];
    for (const s of slices) for (let i = s.from; i < s.to; i++) lines.push(s.message.lines[i]!);
    const store = this.opts.store;
    if (store) await this.persist('store', () => store.store(lines));
    metrics.queueDepth.dec(lines.length);
    await previous;
    const done = slices.filter((s) => s.to === s.message.lines.length);
    if (done.length === 0) return;
    await this.persist('publish', () =>
      this.opts.publisher.publish(
        storedBatchMessages(
          done.map((s) => s.message),
          this.opts.redisKeyPrefix,
          Date.now(),
        ),
      ),
    );
    // The batches before this one are finished, so this batch's complete messages head the queue.
    this.queue.splice(0, done.length);
    const now = Date.now();
    for (const { entry } of done) {
      this.byDigest.delete(entry.digest);
      for (const delivery of entry.deliveries) delivery.ack();
      metrics.unackedMessages.dec(entry.deliveries.length);
      metrics.ackLatency.observe((now - entry.deliveries[0]!.receivedAtMs) / 1000);
    }
    for (const listener of this.progressListeners) listener();
  }

  /**
   * Store and fan-out retry outages themselves; what reaches here is a bug or a surprise. Nothing
   * was acknowledged, so the step is tried again after a pause rather than dropped.
   */
  private async persist(step: string, run: () => Promise<void>): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        return await run();
      } catch (err) {
        if (this.opts.signal.aborted) throw err;
        this.opts.logger.error({ err, step }, 'ingest step failed unexpectedly; retrying');
        if (!(await sleepUnlessAborted(backoffDelayMs(failures, this.opts.backoff), this.opts.signal))) throw err;
      }
    }
  }
}
