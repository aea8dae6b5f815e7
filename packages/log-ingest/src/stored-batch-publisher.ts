import type { Redis } from 'ioredis';
import type { Logger } from '@iotsupport/observability';
import { LOG_CHANNEL_MESSAGE_VERSION, assembleLogChannelMessage, logChannelName } from '@iotsupport/contracts';
import { backoffDelayMs, sleepUnlessAborted, type BackoffPolicy } from './backoff.js';
import { channelBatchId } from './ids.js';
import type { ParsedMessage } from './log-message.js';
import type { IngestMetrics } from './metrics.js';

/** One PUBLISH of the fan-out. */
export interface StoredBatchMessage {
  channel: string;
  payload: string;
}

/**
 * Upper bound of the docs' JSON in one channel message. Keeps every Redis message far below the
 * pub/sub client output buffer limits; the api splits further into < 100 kB gateway events.
 */
export const STORED_BATCH_MAX_DOCS_BYTES = 256 * 1024;

/**
 * The channel messages for messages that were just stored, in receive order: per message, per
 * entity (in order of first appearance), docs in line order, split into parts of at most
 * STORED_BATCH_MAX_DOCS_BYTES. Lines without an entity id, and lines Elasticsearch refused for good
 * (they are in the dead letter, not in the index), are not streamed. The contract's encoder
 * assembles each message from the lines' JSON text, made once at parse time.
 */
export function storedBatchMessages(messages: readonly ParsedMessage[], redisKeyPrefix: string, ingestedAtMs: number): StoredBatchMessage[] {
  const items: StoredBatchMessage[] = [];
  for (const message of messages) {
    const byEntity = new Map<string, string[]>();
    for (const line of message.lines) {
      if (line.entityId === undefined || line.deadLettered) continue;
      let docs = byEntity.get(line.entityId);
      if (!docs) byEntity.set(line.entityId, (docs = []));
      docs.push(line.json);
    }
    let part = 0;
    for (const [entityId, docs] of byEntity) {
      const channel = logChannelName(redisKeyPrefix, entityId);
      let chunk: string[] = [];
      let bytes = 0;
      const flush = () => {
        const header = { v: LOG_CHANNEL_MESSAGE_VERSION, batch_id: channelBatchId(message.digest, part++), device_entity_id: entityId, received_at_ms: message.receivedAtMs, ingested_at_ms: ingestedAtMs } as const;
        items.push({ channel, payload: assembleLogChannelMessage(header, chunk) });
        chunk = [];
        bytes = 0;
      };
      for (const doc of docs) {
        if (chunk.length > 0 && bytes + doc.length > STORED_BATCH_MAX_DOCS_BYTES) flush();
        chunk.push(doc);
        bytes += doc.length + 1;
      }
      flush();
    }
  }
  return items;
}

/**
 * Publishes a batch's fan-out in one pipelined round trip. On a Redis error it retries from the
 * first item not confirmed, in order, with backoff, until it succeeds or the signal aborts; a
 * repeat after a partial success carries the same `batch_id`s, which subscribers drop.
 */
export class StoredBatchPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { backoff: BackoffPolicy; signal: AbortSignal },
    private readonly metrics: IngestMetrics,
    private readonly logger: Logger,
  ) {}

  async publish(items: readonly StoredBatchMessage[]): Promise<void> {
    let remaining = items;
    let attempt = 0;
    while (remaining.length > 0) {
      const confirmed = await this.publishOnce(remaining);
      this.metrics.fanoutPublished.inc(confirmed);
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
    for (const item of items) pipeline.publish(item.channel, item.payload);
    try {
      const results = (await pipeline.exec()) ?? [];
      const firstError = results.findIndex(([err]) => err !== null);
      if (firstError === -1 && results.length === items.length) return items.length;
      this.logger.warn({ err: results[firstError]?.[0] }, 'redis fan-out partly failed; will retry');
      return firstError === -1 ? results.length : firstError;
    } catch (err) {
      this.logger.warn({ err }, 'redis fan-out failed; will retry');
      return 0;
    }
  }
}
