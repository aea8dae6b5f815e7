import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJsonBody, sendHtmlError, sendJson } from './http.js';
import type { BufferedSend, GatewayState } from './state.js';
import { deliver } from './stream.js';

type Reply = { status: number; json: unknown } | { status: number; html: true };

function invalid(message: string, code: string): Reply {
  return { status: 400, json: { error: { message, code } } };
}

/** The gateway's checks of a `/internal/send` body, in its order; the first failing one answers (400). */
export function validate(body: Record<string, unknown>): Reply | { token: string; send: BufferedSend } {
  const { token, event, close } = body;
  if (!token || typeof token !== 'string') return invalid('Invalid request: token is required and must be a string', 'INVALID_TOKEN_MISSING');
  if (event !== undefined) {
    if (typeof event !== 'object' || event === null) return invalid('Invalid request: event must be an object', 'INVALID_EVENT_TYPE');
    const e = event as Record<string, unknown>;
    if (!('data' in e) || typeof e.data !== 'string') {
      return invalid('Invalid request: event.data is required and must be a string', 'INVALID_EVENT_DATA_MISSING');
    }
    if ('name' in e && e.name !== undefined && typeof e.name !== 'string') {
      return invalid('Invalid request: event.name must be a string', 'INVALID_EVENT_NAME_TYPE');
    }
  }
  if (close !== undefined && typeof close !== 'boolean') return invalid('Invalid request: close must be a boolean', 'INVALID_CLOSE_TYPE');
  const e = event as { name?: string; data: string } | undefined;
  return {
    token,
    send: { event: e ? (typeof e.name === 'string' ? { name: e.name, data: e.data } : { data: e.data }) : undefined, close: close === true },
  };
}

async function decide(state: GatewayState, value: unknown): Promise<Reply> {
  // Non-JSON content type: the gateway's handler reads a property of an undefined body and crashes (500 page).
  if (value === undefined) return { status: 500, html: true };
  const checked = validate(value as Record<string, unknown>);
  if ('status' in checked) return checked;
  const conn = state.live.get(checked.token);
  if (!conn) return { status: 404, json: { error: { message: 'Token not found', code: 'TOKEN_NOT_FOUND' } } };
  if (conn.record.state === 'connecting') {
    conn.buffer.push(checked.send);
    return { status: 200, json: { status: 'buffered' } };
  }
  const result = await deliver(state, conn, checked.send);
  if (result === 'error') return { status: 500, json: { error: { message: 'Write failed: connection closed', code: 'WRITE_FAILED' } } };
  return { status: 200, json: { status: 'ok' } };
}

/** POST /internal/send: validate, write (or buffer during connect), and for `close: true` answer only after our disconnect callback did. */
export async function handleSend(state: GatewayState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJsonBody(req);
  const value = body.kind === 'parsed' ? body.value : undefined;
  const token = (value as { token?: unknown } | undefined)?.token;
  const delayMs = typeof token === 'string' ? state.sendDelayMs(token) : 0;
  if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  const failing = typeof token === 'string' && state.failSend(token);
  const reply: Reply = body.kind === 'error' ? { status: body.status, html: true } : failing ? { status: 503, html: true } : await decide(state, value);
  if (state.crashed) return;
  if ('html' in reply) {
    sendHtmlError(res, reply.status);
    state.remember.send({ body: value, status: reply.status, response: 'html' });
    return;
  }
  sendJson(res, reply.status, reply.json);
  state.remember.send({ body: value, status: reply.status, response: JSON.stringify(reply.json) });
}
