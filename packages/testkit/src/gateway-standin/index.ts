import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CallbackClient, type CallbackRecord } from './callback.js';
import { sendHtmlError, sendJson } from './http.js';
import { handleSend } from './send.js';
import { keep, type GatewayConnection, type GatewayState, type SendRecord } from './state.js';
import { clientGone, openStream } from './stream.js';

export { HEARTBEAT_FRAME, READY_FRAME, eventFrame, rejectedFrame } from './frames.js';
export { SEND_BODY_LIMIT, sendError, sendHtmlError, sendJson } from './http.js';
export { validate as checkSendBody } from './send.js';
export type { CallbackOutcome, CallbackPayload, CallbackRecord, DisconnectReason, ForwardedRequest } from './callback.js';
export type { ConnectionOutcome, GatewayConnection, SendRecord, WrittenEvent } from './state.js';

export interface GatewayStandinOptions {
  /** Our callback endpoint, used exactly as given (query string included). Empty: `/readyz` 503, every stream 503. */
  callbackUrl: string | undefined;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** HEARTBEAT_INTERVAL_SECONDS in milliseconds; 15 000 like the gateway. */
  heartbeatIntervalMs?: number;
  /** The gateway waits 5 000 ms for a callback; tests may shorten it to exercise the 504 quickly. */
  callbackTimeoutMs?: number;
  /**
   * Test control, not gateway behaviour: how long a `/internal/send` for this token waits before it
   * is handled and answered (a slow browser connection behind the gateway). Default: none.
   */
  sendDelayMs?: (token: string) => number;
  /**
   * Test control, not gateway behaviour: while this answers true for a send's token, the send is
   * answered 503 (the framework's HTML page, as from an overloaded gateway) and nothing is written
   * or buffered; checked after `sendDelayMs`, only for a body with a string token. Default: never.
   */
  failSend?: (token: string) => boolean;
  /** How many connection / callback / send records, and frames / events per connection, are kept (oldest dropped first). */
  historyLimit?: number;
}

export interface GatewayStandin {
  /** `http://127.0.0.1:<port>`: browsers GET any path here; our API POSTs `/internal/send` here. */
  url: string;
  port: number;
  /** Like the real gateway at shutdown: drops every stream without any callback, then releases the port. */
  stop(): Promise<void>;
  /** Simulated crash: every stream and in-flight callback dropped, no callbacks, port closed. */
  crash(): Promise<void>;
  /** A fresh gateway on the same port after `crash()` (it knows no tokens). */
  restart(): Promise<void>;
  /** Every connection seen (history, oldest first), live records. */
  connections(): GatewayConnection[];
  connection(token: string): GatewayConnection | undefined;
  /** Tokens the gateway currently knows (connecting or open). */
  openTokens(): string[];
  /** The browser of `token` goes away; resolves once the resulting disconnect callback (if any) was answered. */
  disconnectClient(token: string): Promise<void>;
  /** Callbacks made to CALLBACK_URL, oldest first (outcome filled in when answered). */
  callbacks(): CallbackRecord[];
  sends(): SendRecord[];
  /** Number of `/internal/send` requests answered so far (any status). */
  readonly sendCount: number;
}

/** Starts a local stand-in of the SSE Gateway that behaves as sse-gateway-protocol.md describes. */
export async function startGatewayStandin(options: GatewayStandinOptions): Promise<GatewayStandin> {
  const host = options.host ?? '127.0.0.1';
  const historyLimit = options.historyLimit ?? 10_000;
  const history = { connections: [] as GatewayConnection[], callbacks: [] as CallbackRecord[], sends: [] as SendRecord[] };
  let sendCount = 0;
  const remember = <T>(log: T[], entry: T): void => keep(log, entry, historyLimit);

  function newState(): GatewayState {
    const state: GatewayState = {
      callbackUrl: options.callbackUrl || undefined,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
      callback: undefined,
      live: new Map(),
      crashed: false,
      sendDelayMs: options.sendDelayMs ?? (() => 0),
      failSend: options.failSend ?? (() => false),
      historyLimit,
      remember: {
        connection: (r) => remember(history.connections, r),
        callback: (r) => remember(history.callbacks, r),
        send: (r) => {
          sendCount += 1;
          remember(history.sends, r);
        },
      },
    };
    if (state.callbackUrl) state.callback = new CallbackClient(state.callbackUrl, options.callbackTimeoutMs ?? 5_000, state.remember.callback);
    return state;
  }

  function route(state: GatewayState, req: IncomingMessage, res: ServerResponse): Promise<void> | void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      return state.callbackUrl
        ? sendJson(res, 200, { status: 'ready', configured: true })
        : sendJson(res, 503, { status: 'not_ready', configured: false });
    }
    if (req.method === 'POST' && path === '/internal/send') return handleSend(state, req, res);
    if (req.method === 'GET') return openStream(state, req, res);
    sendHtmlError(res, 404, `Cannot ${req.method ?? ''} ${path}`);
  }

  let state = newState();
  let server: Server;
  const sockets = new Set<Socket>();

  async function listen(port: number): Promise<number> {
    const current = state;
    server = createServer((req, res) => {
      Promise.resolve(route(current, req, res)).catch(() => {
        if (!res.headersSent) sendHtmlError(res, 500);
        else res.destroy();
      });
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async function drop(): Promise<void> {
    const dead = state;
    if (dead.crashed) return; // already crashed or stopped
    dead.crashed = true;
    dead.callback?.abortAll();
    for (const conn of dead.live.values()) {
      if (conn.heartbeat) clearInterval(conn.heartbeat);
      conn.record.state = 'closed';
      conn.record.outcome = 'crashed';
    }
    dead.live.clear();
    const closed = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
    await dead.callback?.close();
  }

  const port = await listen(options.port ?? 0);

  return {
    url: `http://${host}:${port}`,
    port,
    stop: drop,
    crash: drop,
    async restart() {
      if (server.listening) await drop();
      state = newState();
      await listen(port);
    },
    connections: () => [...history.connections],
    connection: (token) => history.connections.find((c) => c.token === token),
    openTokens: () => [...state.live.keys()],
    async disconnectClient(token) {
      const conn = state.live.get(token);
      if (!conn) return;
      conn.res.destroy();
      await clientGone(state, token);
    },
    callbacks: () => [...history.callbacks],
    sends: () => [...history.sends],
    get sendCount() {
      return sendCount;
    },
  };
}
