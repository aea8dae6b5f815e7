import type { Redis } from 'ioredis';
import { logChannelMessageFrame, parseCursor, type StreamPosition } from '@iotsupport/contracts';
import { appendResult, defineStreamScripts, deviceStreamKeys, queueAppendBatch, streamRetention, type AppendResult } from '@iotsupport/log-stream';
import type { SseClient } from '@iotsupport/testkit';

export interface AppenderOptions {
  /** LOG_STREAM_MAX_LINES of the window (default 5000). */
  maxLines?: number;
}

/**
 * Appends batches to devices' streams and publishes them exactly as ingest does (the log-stream
 * append script: positions, ids, one atomic step), for api tests without an ingest process.
 */
export function streamAppender(redis: Redis, prefix: string, options: AppenderOptions = {}) {
  defineStreamScripts(redis);
  const retention = streamRetention({
    LOG_STREAM_MAX_LINES: options.maxLines ?? 5000,
    LOG_STREAM_MAX_AGE_SECONDS: 600,
    INGEST_MAX_INFLIGHT: 64,
    INGEST_SESSION_EXPIRY_SECONDS: 3600,
  });
  return async function append(entityId: string, batchId: string, docs: Array<Record<string, unknown>>): Promise<AppendResult> {
    const now = Date.now();
    const ids = docs.map((_, i) => `${batchId}.${i}`);
    const docsJson = docs.map((doc) => JSON.stringify(doc));
    const frame = logChannelMessageFrame({ v: 1, batch_id: batchId, device_entity_id: entityId, received_at_ms: now, ingested_at_ms: now, ids });
    const pipeline = redis.pipeline();
    queueAppendBatch(pipeline, { keys: deviceStreamKeys(prefix, entityId), batchId, frame, lineIds: ids, docsJson }, retention);
    const [[err, reply]] = (await pipeline.exec()) as [[Error | null, unknown]];
    if (err) throw err;
    return appendResult(reply);
  };
}

/** One line as a client sees it: its doc, id, position (offset from the event's `cursor` and line order) and its event's cursor. */
export interface ReceivedLine {
  doc: Record<string, unknown>;
  id: string;
  position: StreamPosition;
  eventCursor: string;
}

interface DeviceLogsPayload {
  device_entity_id: string;
  logs: Array<Record<string, unknown>>;
  ids?: string[];
  cursor?: string;
}

/**
 * Every line a client received for an entity, in arrival order, repeats included. Line i of an
 * event whose last line has cursor `<epoch>:<ms>-<n>` has offset n - (count - 1 - i) (the lines
 * of one event are consecutive).
 */
export function receivedLines(client: SseClient, entityId: string): ReceivedLine[] {
  const out: ReceivedLine[] = [];
  for (const envelope of client.envelopes()) {
    if (envelope.type !== 'device-logs') continue;
    const payload = envelope.payload as DeviceLogsPayload;
    if (payload.device_entity_id !== entityId || !payload.cursor) continue;
    const last = parseCursor(payload.cursor)!;
    payload.logs.forEach((doc, i) => {
      const offset = last.offset - (payload.logs.length - 1 - i);
      out.push({ doc, id: payload.ids![i]!, position: { epoch: last.epoch, ms: last.ms, offset }, eventCursor: payload.cursor! });
    });
  }
  return out;
}

/** What a client keeps after dropping every line whose offset is not after the last one it kept (docs/streams.md). */
export function dedupedByCursor(lines: ReceivedLine[]): { kept: ReceivedLine[]; repeats: number } {
  const kept: ReceivedLine[] = [];
  let repeats = 0;
  for (const line of lines) {
    const last = kept.at(-1);
    if (last && last.position.epoch === line.position.epoch && line.position.offset <= last.position.offset) repeats += 1;
    else kept.push(line);
  }
  return { kept, repeats };
}
