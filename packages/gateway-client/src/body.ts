import { GatewayBodyTooLargeError, GatewayEventDataError, GatewayReservedEventNameError } from './errors.js';

/**
 * The gateway answers 413 above 100 kB. Whether its parser means 100,000 or 102,400 bytes, staying
 * at or below 100,000 is safe for both.
 */
export const MAX_SEND_BODY_BYTES = 100_000;

/** Room kept free in every body for the `,"dropped":N` the client may add at send time. */
export const DROPPED_MARKER_RESERVE_BYTES = 32;

/** Longest token the budget helpers assume (the gateway makes UUIDs: 36 characters). */
export const MAX_TOKEN_LENGTH = 128;

const RESERVED_NAMES = new Set(['ready', 'rejected']);

export interface GatewayEvent {
  /** SSE event name; becomes `type` in the gateway's envelope. */
  name?: string;
  /** Single-line JSON object text; becomes `payload` in the envelope. */
  data: string;
}

/**
 * An event checked and JSON-serialised once, sendable to any number of connections: a batch of logs
 * fanned out to every watcher is escaped and measured once, not once per watcher.
 */
export class PreparedEvent implements GatewayEvent {
  /** Use prepareEvent(): only a checked event is one. */
  private constructor(
    readonly name: string | undefined,
    readonly data: string,
    /** The `event` member of the send body: `{"name":…,"data":…}`. */
    readonly json: string,
    /** UTF-8 bytes of `json`. */
    readonly bytes: number,
  ) {}

  /** No checks: for prepareEvent() after its own, and for a checked event given a dropped marker. */
  static serialise(name: string | undefined, data: string): PreparedEvent {
    const json = JSON.stringify(name === undefined ? { data } : { name, data });
    return new PreparedEvent(name, data, json, Buffer.byteLength(json));
  }
}

/** Bytes of `{"token":` + `,"event":` + `}` around the token's and the event's JSON. */
const BODY_FRAME_BYTES = '{"token":,"event":}'.length;

/**
 * The exact `/internal/send` body (protocol page), assembled from already serialised parts: the
 * same bytes as `JSON.stringify({ token, event, close })` with `close` only when true.
 */
export function sendBody(tokenJson: string, event: PreparedEvent | undefined, close: boolean): string {
  let body = '{"token":' + tokenJson;
  if (event) body += ',"event":' + event.json;
  return body + (close ? ',"close":true}' : '}');
}

/**
 * Bytes `data` occupies inside a send body once JSON-escaped (quotes and backslashes double up).
 * Callers that split large payloads measure pieces with this.
 */
export function escapedDataBytes(data: string): number {
  return Buffer.byteLength(JSON.stringify(data)) - 2;
}

/**
 * Largest escaped `data` size an event named `name` may have so that its body, for any token up to
 * MAX_TOKEN_LENGTH and with a dropped marker added, stays within MAX_SEND_BODY_BYTES.
 */
export function eventDataBudget(name: string | undefined): number {
  const overhead = Buffer.byteLength(sendBody(JSON.stringify('x'.repeat(MAX_TOKEN_LENGTH)), PreparedEvent.serialise(name, ''), false));
  return MAX_SEND_BODY_BYTES - overhead - DROPPED_MARKER_RESERVE_BYTES;
}

/** Checks an event once (reserved names, single-line JSON object text) and serialises it. */
export function prepareEvent(event: GatewayEvent): PreparedEvent {
  if (event instanceof PreparedEvent) return event;
  if (event.name !== undefined && RESERVED_NAMES.has(event.name)) throw new GatewayReservedEventNameError(event.name);
  const { data } = event;
  if (!data.startsWith('{') || !data.endsWith('}')) throw new GatewayEventDataError('must be the JSON text of an object');
  if (/[\r\n]/.test(data)) throw new GatewayEventDataError('must be a single line');
  return PreparedEvent.serialise(event.name, data);
}

/**
 * Send-time check: the event's body for this token, with room for a dropped marker, is within the
 * limit. Sizes only add up: nothing is serialised again.
 */
export function checkBodySize(tokenJson: string, event: PreparedEvent): void {
  const bytes = BODY_FRAME_BYTES + Buffer.byteLength(tokenJson) + event.bytes + DROPPED_MARKER_RESERVE_BYTES;
  if (bytes > MAX_SEND_BODY_BYTES) throw new GatewayBodyTooLargeError(bytes, MAX_SEND_BODY_BYTES);
}

/**
 * Adds `"dropped":N` to an object's JSON text: the browser's only way to see a gap, since the
 * gateway has no event ids (protocol page). `{}` becomes `{"dropped":N}`.
 */
export function withDroppedMarker(data: string, dropped: number): string {
  if (dropped <= 0) return data;
  const inner = data.slice(1, -1).trim();
  return inner.length === 0 ? `{"dropped":${dropped}}` : `{${inner},"dropped":${dropped}}`;
}

/** What a cut document keeps of the original besides the start of its message. */
export interface CutDocumentOptions {
  /** LOG_ENTITY_FIELD: the entity id stays, so the browser still knows whose line it is. */
  entityField: string;
  /** The line's id (its Elasticsearch `_id`), kept as `_id` when known. */
  id?: string | undefined;
}

/** Fields kept beside `truncated` / `original_bytes` when they hold a short scalar. */
const KEPT_FIELDS = ['@timestamp', 'level'] as const;
const MAX_KEPT_VALUE_LENGTH = 256;

function keptValue(value: unknown): unknown {
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  return typeof value === 'string' && value.length <= MAX_KEPT_VALUE_LENGTH ? value : undefined;
}

/** Bytes one code point adds to a send body as part of a JSON string inside the JSON-escaped `data`. */
function escapedCodePointBytes(codePoint: string): number {
  const unit = codePoint.charCodeAt(0);
  if (codePoint.length === 1 && unit >= 0x20 && unit < 0x7f && unit !== 0x22 && unit !== 0x5c) return 1;
  return escapedDataBytes(JSON.stringify(codePoint).slice(1, -1));
}

/**
 * A document whose JSON (`json`, escaped into an event's `data`) needs more than `room` bytes,
 * cut to fit: its id, entity id, `level` and `@timestamp`, `truncated: true`, `original_bytes`
 * (UTF-8 bytes of the original JSON) and as much of its `message` (or, when the message is not a
 * string, of its JSON text) as fits. The cut is on a code point boundary, measured in the UTF-8
 * bytes it occupies once escaped twice (document JSON inside the event's JSON string): never half
 * a surrogate pair, never part of a multi-byte sequence.
 */
export function cutDocument(doc: Record<string, unknown>, json: string, room: number, opts: CutDocumentOptions): string {
  const kept: Record<string, unknown> = {};
  if (opts.id !== undefined) kept._id = opts.id;
  for (const field of [opts.entityField, ...KEPT_FIELDS]) {
    const value = keptValue(doc[field]);
    if (value !== undefined) kept[field] = value;
  }
  const base = { ...kept, truncated: true, original_bytes: Buffer.byteLength(json) };
  const text = typeof doc.message === 'string' ? doc.message : json;
  let left = room - escapedDataBytes(JSON.stringify({ ...base, message: '' }));
  let end = 0;
  for (const codePoint of text) {
    left -= escapedCodePointBytes(codePoint);
    if (left < 0) break;
    end += codePoint.length;
  }
  return JSON.stringify({ ...base, message: text.slice(0, end) });
}
