import type { ServerResponse } from 'node:http';
import type { CallbackClient, CallbackRecord, ForwardedRequest } from './callback.js';

/** How a connection ended, from the gateway's point of view. */
export type ConnectionOutcome =
  /** connect answered 400/401/403: one `rejected` event, no disconnect callback. */
  | 'rejected'
  /** connect answered another non-2xx, timed out (504) or our API was down (503). */
  | 'failed'
  /** the browser left while connect was in flight: no disconnect callback ever. */
  | 'left_during_connect'
  | 'client_closed'
  | 'server_closed'
  | 'error'
  /** `crash()`: dropped without any callback. */
  | 'crashed';

/** An event the gateway wrote because of an `/internal/send` (name as sent, data raw). */
export interface WrittenEvent {
  name?: string;
  data: string;
}

/** What the stand-in records of one browser connection (a live object: it keeps changing). */
export interface GatewayConnection {
  token: string;
  url: string;
  headers: Record<string, string | string[]>;
  state: 'connecting' | 'open' | 'closed';
  outcome?: ConnectionOutcome;
  /** HTTP status the browser got (200 for an open or rejected stream). */
  httpStatus?: number;
  /** Every frame written to the browser, in order: events, `ready`, heartbeats, `rejected` (the latest `historyLimit`). */
  frames: string[];
  /** The events written from `/internal/send`s (buffered ones included), in order (the latest `historyLimit`). */
  events: WrittenEvent[];
}

/** An accepted `/internal/send` that arrived during connect, replayed before `ready`. */
export interface BufferedSend {
  event: WrittenEvent | undefined;
  close: boolean;
}

/** One `/internal/send` as received and answered. */
export interface SendRecord {
  /** The parsed JSON body, or undefined when it had none / was not JSON. */
  body: unknown;
  status: number;
  /** The answer's JSON text, or 'html' for the framework's HTML error page. */
  response: string;
}

/** The gateway-side bookkeeping of a connection that still has a token. */
export interface LiveConnection {
  record: GatewayConnection;
  request: ForwardedRequest;
  res: ServerResponse;
  heartbeat?: NodeJS.Timeout;
  buffer: BufferedSend[];
}

/** Shared state of one stand-in instance, passed to the stream and send handlers. */
export interface GatewayState {
  callbackUrl: string | undefined;
  heartbeatIntervalMs: number;
  callback: CallbackClient | undefined;
  /** Tokens the gateway knows (connecting or open); removed when it forgets them. */
  live: Map<string, LiveConnection>;
  crashed: boolean;
  /** Test control: how long `/internal/send` for a token waits before it is handled (a slow connection). */
  sendDelayMs: (token: string) => number;
  /** Test control: a send for a token this answers true for is answered 503 without being handled. */
  failSend: (token: string) => boolean;
  /** Cap of every recorded list, per connection too (a long `make dev` stream must not grow forever). */
  historyLimit: number;
  remember: {
    connection(record: GatewayConnection): void;
    callback(record: CallbackRecord): void;
    send(record: SendRecord): void;
  };
}

/** Appends to a record list, dropping the oldest entries beyond `limit`. */
export function keep<T>(list: T[], entry: T, limit: number): void {
  list.push(entry);
  if (list.length > limit) list.splice(0, list.length - limit);
}

/** Writes one frame to the browser and records it (nothing once the stream is gone). */
export function writeFrame(state: GatewayState, conn: LiveConnection, frame: string): void {
  if (conn.res.destroyed || conn.res.writableEnded) return;
  keep(conn.record.frames, frame, state.historyLimit);
  conn.res.write(frame);
}

/** Forgets a token: no more sends reach it, heartbeats stop. */
export function forget(state: GatewayState, conn: LiveConnection): void {
  if (conn.heartbeat) clearInterval(conn.heartbeat);
  conn.heartbeat = undefined;
  state.live.delete(conn.record.token);
}
