import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '@iotsupport/testkit';

/**
 * A tiny `/internal/send` endpoint for the client's own tests: it records every body, can hold a
 * token's replies until released, and answers scripted statuses. (The protocol-exact stand-in lives
 * in @iotsupport/testkit; this one only has to be controllable.)
 */
export interface ReceivedSend {
  token: string;
  event?: { name?: string; data: string };
  close?: boolean;
  bytes: number;
  /** The body exactly as it arrived. */
  raw: string;
}

export interface FakeGateway {
  url: string;
  received: ReceivedSend[];
  /** Statuses to answer, in order, for a token (then 200). */
  script(token: string, statuses: number[]): void;
  /** Replies for the token wait until `release(token)`. */
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

export async function startFakeGateway(): Promise<FakeGateway> {
  const received: ReceivedSend[] = [];
  const scripts = new Map<string, number[]>();
  const held = new Map<string, Array<() => void>>();
  const holding = new Set<string>();
  const blackholed = new Set<string>();
  let open = 0;
  let maxOpen = 0;
  let tcp = 0;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString('utf8')) as ReceivedSend;
      body.bytes = raw.length;
      Object.defineProperty(body, 'raw', { value: raw.toString('utf8'), enumerable: false }); // kept out of t.same comparisons
      open += 1;
      maxOpen = Math.max(maxOpen, open);
      const answer = () => {
        const status = scripts.get(body.token)?.shift() ?? 200;
        if (status === 200) received.push(body);
        open -= 1;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 200 ? '{"status":"ok"}' : status === 404 ? '{"error":{"message":"Token not found","code":"TOKEN_NOT_FOUND"}}' : '{"error":{}}');
      };
      if (blackholed.has(body.token)) {
        res.on('close', () => (open -= 1));
        return;
      }
      if (holding.has(body.token)) {
        const list = held.get(body.token) ?? [];
        list.push(answer);
        held.set(body.token, list);
      } else {
        answer();
      }
    });
  });
  server.on('connection', () => (tcp += 1));
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    script: (token, statuses) => scripts.set(token, [...statuses]),
    hold: (token) => holding.add(token),
    release: (token) => {
      holding.delete(token);
      for (const answer of held.get(token) ?? []) answer();
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
