/**
 * Positions in a device's log stream (docs/streams.md). Every line streamed for a device has an
 * offset, increasing by one per line, within an epoch: a random name given to the device's
 * retained history when it is created, and replaced whenever that history was lost (Redis flushed,
 * restarted empty, failed over to an empty replica, or the device idle past the history's expiry).
 *
 * A cursor is the string `<epoch>:<ms>-<offset>`: `ms` is the Redis Stream entry time of the line
 * (what lets the window be read from that point), `offset` its position. Clients treat it as
 * opaque and only ever compare two cursors of ONE device with `compareCursors`.
 * `<epoch>:0-0` is the position of a device with no line yet in its epoch.
 */
export interface StreamPosition {
  epoch: string;
  ms: number;
  offset: number;
}

/** Epoch names: what the append script creates (12 characters of base64url), with room to change. */
const EPOCH = '[A-Za-z0-9_-]{1,32}';
const CURSOR = new RegExp(`^(${EPOCH}):(\\d{1,15})-(\\d{1,15})$`);

/** Longest cursor text `parseCursor` accepts (request schemas bound `since` with it). */
export const MAX_CURSOR_LENGTH = 32 + 1 + 15 + 1 + 15;

export function formatCursor(position: StreamPosition): string {
  return `${position.epoch}:${position.ms}-${position.offset}`;
}

/** The position a cursor names, or undefined when the text is not a cursor (never throws). */
export function parseCursor(cursor: string): StreamPosition | undefined {
  const match = CURSOR.exec(cursor);
  if (!match) return undefined;
  return { epoch: match[1]!, ms: Number(match[2]), offset: Number(match[3]) };
}

/**
 * How cursor `a` of a device stands to cursor `b` of the same device:
 * - `reset`: other epochs — the history between them is gone; the client must backfill (from
 *   Elasticsearch) and start over from the newer cursor;
 * - `before` / `same` / `after`: same history; `same` means nothing new.
 */
export type CursorRelation = 'reset' | 'before' | 'same' | 'after';

export function compareCursors(a: StreamPosition, b: StreamPosition): CursorRelation {
  if (a.epoch !== b.epoch) return 'reset';
  return a.offset < b.offset ? 'before' : a.offset > b.offset ? 'after' : 'same';
}
