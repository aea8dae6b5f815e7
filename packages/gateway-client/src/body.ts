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
