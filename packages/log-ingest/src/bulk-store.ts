import type { Logger } from '@iotsupport/observability';
import { backoffDelayMs, sleepUnlessAborted, type BackoffPolicy } from './backoff.js';
import { BulkRequestError, type BulkApi, type CreateOp, type ItemResult } from './es-bulk-api.js';
import type { LogLine } from './log-message.js';
import type { IngestMetrics } from './metrics.js';

/** Thrown by `store` when its abort signal fires before every line was accepted. */
export class StoreAborted extends Error {
  constructor() {
    super('store aborted before every line was accepted');
    this.name = 'StoreAborted';
  }
}

export interface StoreOptions {
  deadLetterIndex: string;
  backoff: BackoffPolicy;
  /** Fires on a forced stop: pending retries are abandoned (the broker redelivers what was not acknowledged). */
  signal: AbortSignal;
}

interface PendingOp extends CreateOp {
  deadLetter: boolean;
  line: LogLine;
}

const MAX_REASON_LENGTH = 2000;

/** 201 created, 409 already there (a redelivery or a retry of an item ES had stored): both mean stored. */
function isStored(status: number): boolean {
  return (status >= 200 && status < 300) || status === 409;
}

/** 429 (rejected execution, circuit breaker) and 5xx are transient; anything unexpected is too. */
function isRetryable(status: number): boolean {
  return status === 429 || status >= 500 || status < 200;
}

/**
 * The dead-letter document: the reason and the original document as JSON text (a string field,
 * so the dead-letter index never has a mapping conflict of its own). `_id` = the line's `_id`.
 */
function deadLetterOp(op: PendingOp, result: ItemResult, deadLetterIndex: string): PendingOp {
  return {
    index: deadLetterIndex,
    id: op.id,
    deadLetter: true,
    line: op.line,
    doc: {
      '@timestamp': new Date().toISOString(),
      failed_index: op.index,
      failed_id: op.id,
      status: result.status,
      error_type: result.errorType ?? 'unknown',
      error_reason: (result.errorReason ?? '').slice(0, MAX_REASON_LENGTH),
      source: op.json ?? JSON.stringify(op.doc),
    },
  };
}

/**
 * Writes lines to Elasticsearch until each one is accepted — by its daily index or, when refused
 * permanently, by the dead-letter index. Transient failures (whole request or single items) are
 * retried with capped, fully jittered exponential backoff; only the items still pending are sent
 * again, with the same `_id`s and the `create` op, so a retry never stores a line twice.
 */
export class BulkStore {
  constructor(
    private readonly api: BulkApi,
    private readonly opts: StoreOptions,
    private readonly metrics: IngestMetrics,
    private readonly logger: Logger,
  ) {}

  /** Resolves when every line is accepted; lines that went to the dead letter get `deadLettered`. */
  async store(lines: readonly LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    this.metrics.batchSize.observe(lines.length);
    let pending: PendingOp[] = lines.map((l) => ({ index: l.index, id: l.id, doc: l.doc, json: l.json, deadLetter: false, line: l }));
    let attempt = 0;
    while (pending.length > 0) {
      if (this.opts.signal.aborted) throw new StoreAborted();
      const results = await this.send(pending);
      if (results === undefined) {
        await this.backoff(attempt++);
        continue;
      }
      const next: PendingOp[] = [];
      let transient = false;
      for (let i = 0; i < pending.length; i++) {
        const op = pending[i]!;
        const result = results[i]!;
        if (isStored(result.status)) continue;
        if (isRetryable(result.status)) {
          next.push(op);
          transient = true;
        } else if (!op.deadLetter) {
          op.line.deadLettered = true;
          this.metrics.deadLettered.inc({ reason: result.errorType ?? `http_${result.status}` });
          next.push(deadLetterOp(op, result, this.opts.deadLetterIndex));
        } else {
          // Refused by the dead-letter index as well: nowhere left to put it. Loud, counted, and the
          // whole document is in the log line so an operator can replay it.
          this.metrics.deadLetterFailures.inc();
          this.logger.error({ id: op.id, status: result.status, errorType: result.errorType, reason: result.errorReason, deadLetterDoc: op.doc }, 'dead-letter index refused a line; giving it up');
        }
      }
      pending = next;
      if (transient) await this.backoff(attempt++);
      else attempt = 0;
    }
  }

  /** One `_bulk` request; undefined when it failed as a whole (then every op is retried). */
  private async send(pending: PendingOp[]): Promise<ItemResult[] | undefined> {
    const end = this.metrics.esWriteDuration.startTimer();
    try {
      const results = await this.api.bulkCreate(pending);
      end();
      const failed = results.find((r) => !isStored(r.status));
      if (failed === undefined) this.metrics.esWrites.inc({ status: 'success', error_type: 'none' });
      else this.metrics.esWrites.inc({ status: 'partial', error_type: isRetryable(failed.status) ? 'item_retryable' : 'item_rejected' });
      return results;
    } catch (err) {
      end();
      const errorType = err instanceof BulkRequestError ? err.errorType : 'other';
      this.metrics.esWrites.inc({ status: 'failed', error_type: errorType });
      this.logger.warn({ err, lines: pending.length }, 'elasticsearch bulk request failed; will retry');
      return undefined;
    }
  }

  private async backoff(attempt: number): Promise<void> {
    const ms = backoffDelayMs(attempt, this.opts.backoff);
    this.metrics.retryDelay.observe({ target: 'elasticsearch' }, ms / 1000);
    if (!(await sleepUnlessAborted(ms, this.opts.signal))) throw new StoreAborted();
  }
}
