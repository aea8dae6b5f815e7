import type { Redis } from 'ioredis';
import type { Logger } from '@iotsupport/observability';
import { LOG_CHANNEL_MESSAGE_VERSION, logChannelMessageFrame } from '@iotsupport/contracts';
import { appendResult, defineStreamScripts, deviceStreamKeys, queueAppendBatch, type StreamBatch, type StreamRetention } from '@iotsupport/log-stream';
import { backoffDelayMs, sleepUnlessAborted, type BackoffPolicy } from './backoff.js';
import { channelBatchId } from './ids.js';
import type { LogLine, ParsedMessage } from './log-message.js';
import type { IngestMetrics } from './metrics.js';

/** One append-and-publish: a device's lines of one message (or of a part of it). */
export type StoredBatchMessage = StreamBatch;

/**
 * Upper bound of the docs' JSON in one channel message. Keeps every Redis message far below the
 * pub/sub client output buffer limits; the api splits further into < 100 kB gateway events.
 */
export const STORED_BATCH_MAX_DOCS_BYTES = 256 * 1024;

/**
 * The channel messages for messages that were just stored, in receive order: per message, per
 * entity (in order of first appearance), docs in line order, split into parts of at most
 * STORED_BATCH_MAX_DOCS_BYTES. Lines without an entity id, and lines Elasticsearch refused for good
 * (they are in the dead letter, not in the index), are not streamed. Each message is the
 * contract's frame around the lines' JSON text (made once at parse time), sent to Redis once:
 * the append script stores each line and joins them into the message it publishes.
 */
export function storedBatchMessages(messages: readonly ParsedMessage[], redisKeyPrefix: string, ingestedAtMs: number): StoredBatchMessage[] {
  const items: StoredBatchMessage[] = [];
  for (const message of messages) {
    const byEntity = new Map<string, LogLine[]>();
    for (const line of message.lines) {
      if (line.entityId === undefined || line.deadLettered) continue;
      let lines = byEntity.get(line.entityId);
      if (!lines) byEntity.set(line.entityId, (lines = []));
      lines.push(line);
    }
    let part = 0;
    for (const [entityId, lines] of byEntity) {
      const keys = deviceStreamKeys(redisKeyPrefix, entityId);
      let docsJson: string[] = [];
      let lineIds: string[] = [];
      let bytes = 0;
      const flush = () => {
        const batchId = channelBatchId(message.digest, part++);
        const header = { v: LOG_CHANNEL_MESSAGE_VERSION, batch_id: batchId, device_entity_id: entityId, received_at_ms: message.receivedAtMs, ingested_at_ms: ingestedAtMs, ids: lineIds } as const;
        items.push({ keys, batchId, frame: logChannelMessageFrame(header), lineIds, docsJson });
        docsJson = [];
        lineIds = [];
        bytes = 0;
      };
      for (const line of lines) {
        if (docsJson.length > 0 && bytes + line.json.length > STORED_BATCH_MAX_DOCS_BYTES) flush();
        docsJson.push(line.json);
        lineIds.push(line.id);
        bytes += line.json.length + 1;
      }
      flush();
    }
  }
  return items;
}

/**
 * Appends each stored batch to its device's stream and publishes it (one atomic script per item,
 * packages/log-stream), all items in one pipelined round trip. On a Redis error it retries from
 * the first item not confirmed, in order, with backoff, until it succeeds or the signal aborts; an
 * item the stream already holds (a repeat after a partial success, or a redelivery after a crash)
 * is skipped by the script and counted, neither appended nor published again.
 */
export class StoredBatchPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { backoff: BackoffPolicy; signal: AbortSignal; retention: StreamRetention },
    private readonly metrics: IngestMetrics,
    private readonly logger: Logger,
  ) {
    defineStreamScripts(redis);
  }

  async publish(items: readonly StoredBatchMessage[]): Promise<void> {
    let remaining = items;
    let attempt = 0;
    while (remaining.length > 0) {
      const confirmed = await this.publishOnce(remaining);
      remaining = remaining.slice(confirmed);
      if (remaining.length === 0) return;
      const ms = backoffDelayMs(attempt++, this.opts.backoff);
      this.metrics.retryDelay.observe({ target: 'redis' }, ms / 1000);
      if (!(await sleepUnlessAborted(ms, this.opts.signal))) throw new Error('fan-out aborted before every message was published');
    }
  }

  /** How many items, from the start, Redis confirmed. */
  private async publishOnce(items: readonly StoredBatchMessage[]): Promise<number> {
    const pipeline = this.redis.pipeline();
    for (const item of items) queueAppendBatch(pipeline, item, this.opts.retention);
    try {
      const results = (await pipeline.exec()) ?? [];
      let confirmed = results.findIndex(([err]) => err !== null);
      if (confirmed === -1) confirmed = Math.min(results.length, items.length);
      for (const [, reply] of results.slice(0, confirmed)) {
        if (appendResult(reply).appended) this.metrics.fanoutPublished.inc();
        else this.metrics.streamDuplicateBatches.inc();
      }
      if (confirmed === items.length) return confirmed;
      this.logger.warn({ err: results[confirmed]?.[0] }, 'redis fan-out partly failed; will retry');
      return confirmed;
    } catch (err) {
      this.logger.warn({ err }, 'redis fan-out failed; will retry');
      return 0;
    }
  }
}
