import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { Test } from 'tap';
import { request } from 'undici';
import { listenOnLoopback, startGatewayStandin, type GatewayStandin, type GatewayStandinOptions } from '../src/index.js';

/** One callback the stand-in made to our fake API. */
export interface ReceivedCallback {
  url: string;
  headers: IncomingHttpHeaders;
  body: { action: 'connect' | 'disconnect'; token: string; reason?: string; request: { url: string; headers: Record<string, string | string[]> } };
}

export type Answer = { status: number; statusMessage?: string } | Promise<{ status: number; statusMessage?: string }>;

/** A tiny stand-in for our API's callback endpoint: records every call, answers as `answer` says. */
export async function startCallbackServer(t: Test, answer: (cb: ReceivedCallback) => Answer = () => ({ status: 200 })) {
  const received: ReceivedCallback[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const cb: ReceivedCallback = { url: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) };
      received.push(cb);
      void Promise.resolve(api.answer(cb)).then(({ status, statusMessage }) => {
        if (statusMessage) res.statusMessage = statusMessage;
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      });
    });
  });
  const base = `http://127.0.0.1:${await listenOnLoopback(server)}`;
  const api = {
    url: `${base}/api/sse/callback?secret=s3cr3t&x=1`,
    received,
    answer,
    connects: () => received.filter((c) => c.body.action === 'connect'),
    disconnects: () => received.filter((c) => c.body.action === 'disconnect'),
  };
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return api;
}

/** A gateway stand-in whose callbacks go to `callbackUrl`, stopped when the test ends. */
export async function startGateway(t: Test, options: GatewayStandinOptions): Promise<GatewayStandin> {
  const gateway = await startGatewayStandin(options);
  t.teardown(() => gateway.stop());
  return gateway;
}

/** A promise plus its resolver: lets a test hold a callback answer until it has checked something. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** POST /internal/send with a raw body; returns status, content type and body text. */
export async function postSend(gatewayUrl: string, body: unknown, contentType: string | null = 'application/json') {
  const res = await request(`${gatewayUrl}/internal/send`, {
    method: 'POST',
    headers: contentType ? { 'content-type': contentType } : {},
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), text, json: () => JSON.parse(text) as unknown };
}
