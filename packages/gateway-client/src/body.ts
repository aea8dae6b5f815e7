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

/** The exact `/internal/send` body (protocol page), serialised once. */
export function encodeSendBody(token: string, event: GatewayEvent | undefined, close: boolean): string {
  const body: { token: string; event?: GatewayEvent; close?: boolean } = { token };
  if (event) body.event = event.name === undefined ? { data: event.data } : { name: event.name, data: event.data };
  if (close) body.close = true;
  return JSON.stringify(body);
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
  const overhead = Buffer.byteLength(encodeSendBody('x'.repeat(MAX_TOKEN_LENGTH), { name, data: '' }, false));
  return MAX_SEND_BODY_BYTES - overhead - DROPPED_MARKER_RESERVE_BYTES;
}

/**
 * Enqueue-time checks: reserved names, single-line JSON object text, size with room for the marker.
 * Returns the encoded body (without `close`), so it is serialised once.
 */
export function validateEvent(token: string, event: GatewayEvent): string {
  if (event.name !== undefined && RESERVED_NAMES.has(event.name)) throw new GatewayReservedEventNameError(event.name);
  const { data } = event;
  if (!data.startsWith('{') || !data.endsWith('}')) throw new GatewayEventDataError('must be the JSON text of an object');
  if (/[\r\n]/.test(data)) throw new GatewayEventDataError('must be a single line');
  const body = encodeSendBody(token, event, false);
  // Every character takes at least one byte: only bodies that might be too large are measured.
  const bytes = (body.length * 3 > MAX_SEND_BODY_BYTES ? Buffer.byteLength(body) : body.length) + DROPPED_MARKER_RESERVE_BYTES;
  if (bytes > MAX_SEND_BODY_BYTES) throw new GatewayBodyTooLargeError(bytes, MAX_SEND_BODY_BYTES);
  return body;
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
