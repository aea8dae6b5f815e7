import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { SEND_BODY_LIMIT, checkSendBody, listenOnLoopback, readRequestBody, sendError, sendHtmlError, sendJson } from '@iotsupport/testkit';

/**
 * `POST /internal/send` as the gateway answers it (docs: sse-gateway-protocol.md), for the client's
 * own tests. It holds a set of tokens (`connect` / `disconnect` stand for a browser's stream opening
 * and ending, no stream is served): a send, probe or close for a token it does not hold is 404
 * TOKEN_NOT_FOUND, and `close: true` forgets the token. Bad bodies get the gateway's 400 / 413 / 500.
 *
 * On top of that, test controls for faults: scripted 400/500 replies, replies held until released,
 * requests never answered, and counts of open requests and TCP connections. (The stand-in with
 * streams and callbacks is testkit's startGatewayStandin; this one is small and controllable.)
 */
export interface ReceivedSend {
  token: string;
  event?: { name?: string; data: string };
  close?: boolean;
  bytes: number;
  /** The body exactly as it arrived. */
  raw: string;
}

/** Faults a test can script; each is answered with the body the gateway gives for that status. */
export type ScriptedFault = 400 | 500;

export interface FakeGateway {
  url: string;
  /** The sends the gateway accepted (200), in the order it answered them. */
  received: ReceivedSend[];
  /** A browser's stream is open for these tokens: the gateway holds them. */
  connect(...tokens: string[]): void;
  /** The browser left: later sends for the token are 404. */
  disconnect(token: string): void;
  isConnected(token: string): boolean;
  /** Faults to answer, in order, for a token's next requests (then the normal answer). */
  script(token: string, faults: ScriptedFault[]): void;
  /** Replies for the token wait until `release(token)`; a held request is judged when released. */
  hold(token: string): void;
  release(token: string): void;
  /** Requests never answered for this token. */
  blackhole(token: string): void;
  /** Requests currently open, and the most seen at once. */
  open(): number;
  maxOpen(): number;
  tcpConnections(): number;
  forToken(token: string): ReceivedSend[];
  close(): Promise<void>;
}

// ---- parsing, as the gateway (an Express 5 app) does it (replies and checks: testkit's stand-in) ----

/** What express.json() makes of the bytes: a body to check, or the framework's own error status. */
function parseBody(req: IncomingMessage, raw: Buffer): { body: Record<string, unknown> } | { htmlStatus: number } {
  // Without a JSON content type the gateway's handler reads a property of an undefined body: 500.
  if ((req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() !== 'application/json') return { htmlStatus: 500 };
  if (raw.length > SEND_BODY_LIMIT) return { htmlStatus: 413 };
  const text = raw.toString('utf8');
  if (text.trim() === '') return { body: {} };
  if (!['{', '['].includes(text.trimStart()[0]!)) return { htmlStatus: 400 }; // the parser's "strict" mode
  try {
    return { body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { htmlStatus: 400 };
  }
}

// ---- the server ----------------------------------------------------------------------------------

export async function startFakeGateway(): Promise<FakeGateway> {
  const received: ReceivedSend[] = [];
  const connected = new Set<string>();
  const scripts = new Map<string, ScriptedFault[]>();
  const held = new Map<string, Array<() => void>>();
  const holding = new Set<string>();
  const blackholed = new Set<string>();
  let open = 0;
  let maxOpen = 0;
  let tcp = 0;

  /** The gateway's answer to a well-formed body, decided when the reply goes out. */
  function answer(res: ServerResponse, send: ReceivedSend): void {
    open -= 1;
    const fault = scripts.get(send.token)?.shift();
    if (fault === 400) return sendError(res, 400, 'Invalid request: event must be an object', 'INVALID_EVENT_TYPE');
    if (fault === 500) return sendHtmlError(res, 500);
    if (!connected.has(send.token)) return sendError(res, 404, 'Token not found', 'TOKEN_NOT_FOUND');
    // The real gateway removes the token, calls our disconnect callback, then answers.
    if (send.close === true) connected.delete(send.token);
    received.push(send);
    sendJson(res, 200, { status: 'ok' });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRequestBody(req);
    if (req.method !== 'POST' || req.url !== '/internal/send') return sendHtmlError(res, 404);
    const parsed = parseBody(req, raw);
    if ('htmlStatus' in parsed) return sendHtmlError(res, parsed.htmlStatus);
    const checked = checkSendBody(parsed.body);
    if ('status' in checked) return sendJson(res, checked.status, 'json' in checked ? checked.json : {});

    const send = parsed.body as unknown as ReceivedSend;
    send.bytes = raw.length;
    Object.defineProperty(send, 'raw', { value: raw.toString('utf8'), enumerable: false }); // kept out of t.same comparisons
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    if (blackholed.has(send.token)) {
      res.on('close', () => (open -= 1)); // the client gave up on it
      return;
    }
    if (!holding.has(send.token)) return answer(res, send);
    const list = held.get(send.token) ?? [];
    list.push(() => answer(res, send));
    held.set(send.token, list);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendHtmlError(res, 500);
    });
  });
  server.on('connection', () => (tcp += 1));
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    connect: (...tokens) => tokens.forEach((token) => connected.add(token)),
    disconnect: (token) => connected.delete(token),
    isConnected: (token) => connected.has(token),
    script: (token, faults) => scripts.set(token, [...faults]),
    hold: (token) => holding.add(token),
    release: (token) => {
      holding.delete(token);
      for (const reply of held.get(token) ?? []) reply();
      held.delete(token);
    },
    blackhole: (token) => blackholed.add(token),
    open: () => open,
    maxOpen: () => maxOpen,
    tcpConnections: () => tcp,
    forToken: (token) => received.filter((r) => r.token === token),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
