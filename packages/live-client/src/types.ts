import type { LiveLine } from './device-stream.js';

/** The part of the WHATWG EventSource the client uses (the browser's, or the `eventsource` package's). */
export interface EventSourceLike {
  readonly readyState: number;
  onmessage: ((event: { data: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  addEventListener(type: string, listener: (event: { data: string }) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; credentials: 'include' | 'same-origin' }) => Promise<{
  status: number;
  json(): Promise<unknown>;
}>;

export interface LiveClientOptions {
  /** The SSE Gateway's base URL, e.g. `https://gateway.example` (the stream is `<url>/events?request_id=…`). */
  gatewayUrl: string;
  /** The api's base URL ('' = same origin as the page). */
  apiUrl?: string;
  /** Default: `globalThis.EventSource` (browsers). The Node entry passes the `eventsource` package's. */
  EventSource?: EventSourceConstructor;
  /** Default: `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Default: a random one. 1–128 characters of [A-Za-z0-9_-]. */
  requestId?: string;
  /** Extra headers on subscribe calls (e.g. `authorization`). */
  headers?: Record<string, string>;
  /**
   * Send cookies to a gateway and api on another origin (EventSource `withCredentials`, fetch
   * `credentials: 'include'`); both must then allow it with CORS. Default false: same-origin
   * requests carry cookies anyway.
   */
  withCredentials?: boolean;
  /** Delay before reopening a failed stream: starts at `min`, doubles up to `max` (ms). */
  reconnectDelayMs?: { min: number; max: number };
  /**
   * After a `recovered: true` answer, how long to hold lines past a gap for the replay to fill it
   * before showing them and reporting the gap (a fallback: the replay normally comes at once).
   */
  resumeTimeoutMs?: number;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** `POST /api/device-logs/subscribe` 200 body. */
export interface SubscribeAnswer {
  status: 'subscribed';
  device_entity_id: string;
  cursor?: string;
  recovered?: boolean;
}

/** Everything a page listens to, with its payload. */
export interface LiveClientEvents {
  /** New lines of a device, in stream order, each once. */
  lines: { deviceId: number | undefined; deviceEntityId: string; lines: LiveLine[] };
  state: { state: ConnectionState };
  /** A resume the window could not serve: lines after `since` are missing (backfill from Elasticsearch). */
  unrecovered: { deviceId: number | undefined; deviceEntityId: string; since: string; cursor: string };
  /** The device's history was lost (new epoch): lines between the two cursors are gone from the stream. */
  reset: { deviceId: number | undefined; deviceEntityId: string; from: string; to: string };
  /** Offsets skipped in a device's stream. */
  gap: { deviceId: number | undefined; deviceEntityId: string; after: string; missing: number };
  /** The server's `dropped` marker: that many events for this connection were lost before this one. */
  dropped: { type: string; dropped: number };
  /**
   * The stream stayed silent longer than the server's `stream-alive` promise: nobody serves it any
   * more. The client reopens it (and resumes every device by cursor) right after this.
   */
  silent: { silentForMs: number };
  /** Any other event the gateway delivered (e.g. `rotation-updated`); `stream-alive` is kept inside. */
  event: { type: string; payload: unknown };
  /** The gateway refused the stream (our connect callback answered 401/403/400): no more reconnects. */
  rejected: { status: number; message: string };
  /** A subscribe the api refused for good (the device stays unwatched). */
  error: { deviceId: number; error: Error };
}

export type LiveClientEventName = keyof LiveClientEvents;
