import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DisconnectReason, ForwardedRequest } from './callback.js';
import { eventFrame, HEARTBEAT_FRAME, READY_FRAME, rejectedFrame, STREAM_HEADERS } from './frames.js';
import { sendError } from './http.js';
import { forget, keep, writeFrame, type BufferedSend, type GatewayState, type LiveConnection } from './state.js';

/** Node already lower-cases names and joins repeats (cookie with '; ', others with ', '); only set-cookie stays an array. */
function forwardedHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) out[name] = value;
  return out;
}

/**
 * A browser's GET: register the token, call our API back, then open the stream (2xx), send one
 * `rejected` event (400/401/403) or answer an error (anything else, timeout 504, API down 503).
 */
export async function openStream(state: GatewayState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!state.callbackUrl || !state.callback) return sendError(res, 503, 'Service not configured', 'SERVICE_NOT_CONFIGURED');
  const token = randomUUID();
  const request: ForwardedRequest = { url: req.url ?? '/', headers: forwardedHeaders(req) };
  const conn: LiveConnection = {
    record: { token, url: request.url, headers: request.headers, state: 'connecting', frames: [], events: [] },
    request,
    res,
    buffer: [],
  };
  state.remember.connection(conn.record);
  state.live.set(token, conn);
  res.on('close', () => void clientGone(state, token));

  const outcome = await state.callback.post({ action: 'connect', token, request });
  if (state.crashed || conn.record.state === 'closed') return; // crashed, or the browser left meanwhile

  if (outcome.kind === 'status' && outcome.status >= 200 && outcome.status < 300) return openAccepted(state, conn);

  forget(state, conn);
  conn.record.state = 'closed';
  if (outcome.kind === 'status' && (outcome.status === 400 || outcome.status === 401 || outcome.status === 403)) {
    conn.record.outcome = 'rejected';
    conn.record.httpStatus = 200;
    res.writeHead(200, STREAM_HEADERS);
    writeFrame(state, conn, rejectedFrame(outcome.status, outcome.statusText));
    res.end();
    return;
  }
  conn.record.outcome = 'failed';
  if (outcome.kind === 'timeout') {
    conn.record.httpStatus = 504;
    return sendError(res, 504, 'Gateway timeout', 'GATEWAY_TIMEOUT');
  }
  if (outcome.kind === 'network') {
    conn.record.httpStatus = 503;
    return sendError(res, 503, 'Backend unavailable', 'BACKEND_UNAVAILABLE');
  }
  conn.record.httpStatus = outcome.status;
  sendError(res, outcome.status, `Backend returned ${outcome.status}`, 'BACKEND_ERROR');
}

async function openAccepted(state: GatewayState, conn: LiveConnection): Promise<void> {
  conn.res.writeHead(200, STREAM_HEADERS);
  conn.res.flushHeaders();
  conn.record.state = 'open';
  conn.record.httpStatus = 200;
  // Sends that arrived during connect go out first, in order; a buffered close ends it before `ready`.
  for (const buffered of conn.buffer.splice(0)) {
    if ((await deliver(state, conn, buffered)) === 'closed') return;
  }
  if (conn.record.state !== 'open') return;
  writeFrame(state, conn, READY_FRAME);
  conn.heartbeat = setInterval(() => writeFrame(state, conn, HEARTBEAT_FRAME), state.heartbeatIntervalMs);
  conn.heartbeat.unref();
}

/** Writes a send's event (if any) and performs its close. 'error' when the stream can no longer be written. */
export async function deliver(state: GatewayState, conn: LiveConnection, send: BufferedSend): Promise<'ok' | 'closed' | 'error'> {
  if (send.event) {
    if (conn.res.destroyed || conn.res.writableEnded) {
      await serverClose(state, conn, 'error');
      return 'error';
    }
    keep(conn.record.events, send.event, state.historyLimit);
    writeFrame(state, conn, eventFrame(send.event.name, send.event.data));
  }
  if (!send.close) return 'ok';
  await serverClose(state, conn, 'server_closed');
  return 'closed';
}

/** Our side closes: forget the token, wait for our disconnect callback's answer, then end the stream. */
export async function serverClose(state: GatewayState, conn: LiveConnection, reason: DisconnectReason): Promise<void> {
  forget(state, conn);
  conn.record.state = 'closed';
  conn.record.outcome = reason;
  await state.callback?.post({ action: 'disconnect', reason, token: conn.record.token, request: conn.request });
  if (!state.crashed) conn.res.end();
}

/** The browser went away (or a test made it go): a disconnect callback only if the stream was open. */
export async function clientGone(state: GatewayState, token: string): Promise<void> {
  const conn = state.live.get(token);
  if (!conn || state.crashed) return;
  forget(state, conn);
  const wasOpen = conn.record.state === 'open';
  conn.record.state = 'closed';
  if (!wasOpen) {
    conn.record.outcome = 'left_during_connect';
    return;
  }
  conn.record.outcome = 'client_closed';
  await state.callback?.post({ action: 'disconnect', reason: 'client_closed', token, request: conn.request });
}
