import type { ChainableCommander } from 'ioredis';
import type { StreamPosition } from '@iotsupport/contracts';
import type { DeviceStreamKeys } from './keys.js';
import { epochCandidate, type StreamRetention } from './retention.js';
import { callScript } from './scripts.js';

/** One stored batch of one device's lines, as ingest appends it. */
export interface StreamBatch {
  keys: DeviceStreamKeys;
  /** The channel message's `batch_id`: a batch already appended under this id is skipped. */
  batchId: string;
  /** The channel message's text around its docs (contracts' logChannelMessageFrame), without stream positions. */
  frame: { beforeDocs: string; afterDocs: string };
  /** Per line, in order: its id (Elasticsearch `_id`) and its document's JSON. */
  lineIds: readonly string[];
  docsJson: readonly string[];
}

export type AppendResult =
  | { appended: true; first: StreamPosition; lastOffset: number; epochCreated: boolean }
  /** The batch was appended (and published) before: nothing done. `head` is the device's position. */
  | { appended: false; head: StreamPosition };

/**
 * Queues the append-batch script for one batch on a pipeline (of a client the scripts were
 * defined on): in one atomic step it creates the device's epoch if missing, skips a batch id it
 * already holds, gives the lines the next offsets, adds them to the stream, trims the stream by
 * count and age, and PUBLISHes the message with its position. See src/lua/append-batch.lua.
 */
export function queueAppendBatch(pipeline: ChainableCommander, batch: StreamBatch, retention: StreamRetention): void {
  const { keys } = batch;
  const args: (string | number)[] = [
    keys.head,
    keys.stream,
    keys.batches,
    epochCandidate(),
    batch.batchId,
    retention.maxLines,
    retention.maxAgeMs,
    retention.rememberedBatches,
    retention.headTtlMs,
    keys.channel,
    batch.frame.beforeDocs,
    batch.frame.afterDocs,
  ];
  for (let i = 0; i < batch.lineIds.length; i++) args.push(batch.lineIds[i]!, batch.docsJson[i]!);
  callScript(pipeline, 'logStreamAppendBatch', args);
}

/** The script's reply as an AppendResult. */
export function appendResult(reply: unknown): AppendResult {
  const [status, epoch, ms, offset, last, created] = reply as [string, string, number, number, number, number];
  if (status === 'duplicate') return { appended: false, head: { epoch, ms, offset } };
  return { appended: true, first: { epoch, ms, offset }, lastOffset: last, epochCreated: created === 1 };
}
