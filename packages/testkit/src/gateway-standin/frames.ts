/**
 * The exact bytes the SSE Gateway writes to a browser (see shared/reference/sse-gateway-protocol.md).
 * Exported so tests can compare byte for byte instead of re-typing the framing.
 */

/** After a 2xx connect reply (and after any buffered events): a named event with an empty data line. */
export const READY_FRAME = 'event: ready\ndata:\n\n';

/** Comment line written every heartbeat interval. */
export const HEARTBEAT_FRAME = ': heartbeat\n\n';

/** The single event a browser gets when our connect callback answered 400/401/403. */
export function rejectedFrame(status: number, message: string): string {
  return `event: rejected\ndata: ${JSON.stringify({ status, message })}\n\n`;
}

/**
 * How one `/internal/send` event is written. A named event is wrapped in an unnamed envelope with
 * `data` pasted in raw (so it must be single-line JSON); an unnamed one is written as plain `data:`
 * lines. The name `ready` is the gateway's own control event and ignores `data` (it is reserved:
 * our code must never send it, the stand-in reproduces what would happen if it did).
 */
export function eventFrame(name: string | undefined, data: string): string {
  if (name === 'ready') return READY_FRAME;
  if (name !== undefined && name.length > 0) return `data: {"type":${JSON.stringify(name)},"payload":${data}}\n\n`;
  return `${data.split('\n').map((line) => `data: ${line}\n`).join('')}\n`;
}

/** Response headers of an SSE stream (plain chunked text, never compressed). */
export const STREAM_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;
