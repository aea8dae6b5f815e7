import { request, type IncomingHttpHeaders } from 'node:http';
import { createParser } from 'eventsource-parser';

/** One thing read from the stream: an event (`event` unset for unnamed ones) or a comment (`: heartbeat`). */
export interface SseMessage {
  event?: string;
  data: string;
  comment?: string;
}

/** A named event the gateway wrapped: `data: {"type":"<name>","payload":<data>}`. */
export interface SseEnvelope {
  type: string;
  payload: unknown;
}

export interface SseClientOptions {
  /** Sent as given, e.g. `{ authorization: 'Bearer …', cookie: 'access_token=…' }`; arrays repeat a header. */
  headers?: Record<string, string | string[]>;
  /** Default timeout of the `waitFor…` helpers. */
  timeoutMs?: number;
}

export interface SseClient {
  /** Status and headers, once the server sends them (after the gateway's connect callback). */
  readonly response: Promise<{ status: number; headers: IncomingHttpHeaders }>;
  /** Every message so far, in order (comments included). */
  readonly messages: SseMessage[];
  /** Every byte received so far, as text: for exact-framing assertions and error bodies. */
  readonly raw: string;
  /** Resolves when the stream is over (ended by the server, reset, or closed by us). */
  readonly ended: Promise<void>;
  readonly isEnded: boolean;
  /** Named events unwrapped from the gateway's unnamed envelopes, in order. */
  envelopes(): SseEnvelope[];
  /** Resolves with the first message (past or future) matching `predicate`. */
  waitFor(predicate: (message: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  /** Resolves once at least `count` envelopes arrived (returns the first `count`). */
  waitForEnvelopes(count: number, timeoutMs?: number): Promise<SseEnvelope[]>;
  /** The browser leaves: the connection is destroyed. */
  close(): void;
  [Symbol.asyncIterator](): AsyncIterator<SseMessage>;
}

function asEnvelope(message: SseMessage): SseEnvelope | undefined {
  if (message.event !== undefined || message.comment !== undefined) return undefined;
  try {
    const value = JSON.parse(message.data) as unknown;
    if (typeof value === 'object' && value !== null && typeof (value as SseEnvelope).type === 'string' && 'payload' in value) {
      return value as SseEnvelope;
    }
  } catch {
    // not an envelope: an unnamed event with plain data
  }
  return undefined;
}

/** Opens a stream like a browser's EventSource would (one GET, no reconnects) and parses what arrives. */
export function openSse(url: string, options: SseClientOptions = {}): SseClient {
  const defaultTimeout = options.timeoutMs ?? 5_000;
  const messages: SseMessage[] = [];
  const waiters = new Set<() => void>();
  let raw = '';
  let isEnded = false;
  let endedResolve!: () => void;
  const ended = new Promise<void>((resolve) => (endedResolve = resolve));
  const notify = (): void => waiters.forEach((check) => check());
  const finish = (): void => {
    if (isEnded) return;
    isEnded = true;
    endedResolve();
    notify();
  };

  const parser = createParser({
    onEvent: (e) => {
      messages.push(e.event === undefined ? { data: e.data } : { event: e.event, data: e.data });
      notify();
    },
    onComment: (comment) => {
      messages.push({ data: '', comment });
      notify();
    },
  });

  const req = request(url, { method: 'GET', headers: { accept: 'text/event-stream', ...options.headers }, agent: false });
  const response = new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
    req.on('response', (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        parser.feed(chunk);
      });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    req.on('error', (err) => {
      reject(err);
      finish();
    });
    req.on('close', finish);
  });
  response.catch(() => undefined); // callers that never await it must not see an unhandled rejection
  req.end();

  function waitUntil<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const attempt = (): void => {
        const value = check();
        if (value !== undefined) return done(() => resolve(value));
        if (isEnded) done(() => reject(new Error(`stream ended before ${what}; received: ${JSON.stringify(raw)}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${timeoutMs} ms; received: ${JSON.stringify(raw)}`))), timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(attempt);
        settle();
      };
      waiters.add(attempt);
      attempt();
    });
  }

  const envelopes = (): SseEnvelope[] => messages.map(asEnvelope).filter((e): e is SseEnvelope => e !== undefined);

  return {
    response,
    messages,
    get raw() {
      return raw;
    },
    ended,
    get isEnded() {
      return isEnded;
    },
    envelopes,
    waitFor: (predicate, timeoutMs = defaultTimeout) => waitUntil(() => messages.find(predicate), 'matching message', timeoutMs),
    waitForEnvelopes: (count, timeoutMs = defaultTimeout) =>
      waitUntil(() => (envelopes().length >= count ? envelopes().slice(0, count) : undefined), `${count} envelopes`, timeoutMs),
    close: () => req.destroy(),
    [Symbol.asyncIterator]() {
      let cursor = 0;
      return {
        next: async (): Promise<IteratorResult<SseMessage>> => {
          try {
            const message = await waitUntil(() => messages[cursor], 'next message', 60_000);
            cursor += 1;
            return { value: message, done: false };
          } catch (err) {
            if (isEnded && cursor >= messages.length) return { value: undefined, done: true };
            throw err;
          }
        },
      };
    },
  };
}
