import type { Redis } from 'ioredis';
import { formatCursor, type StreamPosition } from '@iotsupport/contracts';
import type { DeviceStreamKeys } from './keys.js';
import { epochCandidate, type StreamRetention } from './retention.js';
import { callScript } from './scripts.js';

/** One retained line. */
export interface StreamLine {
  cursor: string;
  /** Elasticsearch `_id`. */
  id: string;
  /** The stored document's JSON text. */
  doc: string;
}

export type ReadAfterCursor =
  /** `lines`: the lines right after the cursor, in order, at most the limit (read again from the last one for more). */
  | { recoverable: true; head: StreamPosition; lines: StreamLine[] }
  /**
   * The lines after the cursor are not all held: the epoch changed (history lost), the line right
   * after it was trimmed, or the cursor is past the head (not one this history gave out).
   */
  | { recoverable: false; reason: 'epoch_changed' | 'trimmed' | 'ahead'; head: StreamPosition };

type Reply = [string, string, string, string, Array<[string, string[]]>];

/**
 * The lines of a device's window after `since`, read atomically with the device's head position.
 * A device without an epoch gets one (its history starts now), so the head is always a cursor a
 * client can resume from. `since` undefined reads only the head (`reason: 'epoch_changed'`).
 */
export async function readAfterCursor(redis: Redis, keys: DeviceStreamKeys, retention: StreamRetention, since: StreamPosition | undefined, limit: number): Promise<ReadAfterCursor> {
  const reply = (await callScript(redis, 'logStreamReadAfterCursor', [
    keys.head,
    keys.stream,
    keys.batches,
    epochCandidate(),
    retention.headTtlMs,
    since?.epoch ?? '',
    since?.ms ?? 0,
    since?.offset ?? 0,
    limit,
  ])) as Reply;
  const [status, epoch, ms, offset, entries] = reply;
  const head = { epoch, ms: Number(ms), offset: Number(offset) };
  if (status !== 'ok') return { recoverable: false, reason: status as 'epoch_changed' | 'trimmed' | 'ahead', head };
  const lines = entries.map(([entryId, fields]) => {
    const [entryMs, entryOffset] = entryId.split('-');
    return { cursor: formatCursor({ epoch, ms: Number(entryMs), offset: Number(entryOffset) }), ...lineFields(fields) };
  });
  return { recoverable: true, head, lines };
}

/** The device's current position (creating its epoch if it has none). */
export async function streamHead(redis: Redis, keys: DeviceStreamKeys, retention: StreamRetention): Promise<StreamPosition> {
  return (await readAfterCursor(redis, keys, retention, undefined, 0)).head;
}

function lineFields(fields: string[]): { id: string; doc: string } {
  let id = '';
  let doc = '';
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'id') id = fields[i + 1]!;
    else if (fields[i] === 'doc') doc = fields[i + 1]!;
  }
  return { id, doc };
}
