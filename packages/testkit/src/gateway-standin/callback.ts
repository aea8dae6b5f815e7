import { Agent, fetch } from 'undici';

/** What the gateway forwards of the browser's request: raw path+query and Node's joined, lower-case headers. */
export interface ForwardedRequest {
  url: string;
  headers: Record<string, string | string[]>;
}

export type DisconnectReason = 'client_closed' | 'server_closed' | 'error';

export type CallbackPayload =
  | { action: 'connect'; token: string; request: ForwardedRequest }
  | { action: 'disconnect'; reason: DisconnectReason; token: string; request: ForwardedRequest };

/** How a callback ended: our API's HTTP answer, the timeout, or no answer at all. */
export type CallbackOutcome =
  | { kind: 'status'; status: number; statusText: string; body: string }
  | { kind: 'timeout' }
  | { kind: 'network'; message: string };

/** One callback the stand-in made, for assertions (`disconnect` never follows a rejected connect...). */
export interface CallbackRecord {
  payload: CallbackPayload;
  /** Undefined while our API has not answered yet. */
  outcome?: CallbackOutcome;
}

/**
 * POSTs connect/disconnect callbacks to CALLBACK_URL exactly as given: JSON, no auth header,
 * a timeout (5 s in the real gateway). Keep-alive pool of its own so `stop()` can close it.
 */
export class CallbackClient {
  private readonly agent = new Agent({ keepAliveTimeout: 4_000 });
  private aborter = new AbortController();

  constructor(
    private readonly callbackUrl: string,
    private readonly timeoutMs: number,
    private readonly onRecord: (record: CallbackRecord) => void,
  ) {}

  async post(payload: CallbackPayload): Promise<CallbackOutcome> {
    const record: CallbackRecord = { payload };
    this.onRecord(record);
    const signal = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.aborter.signal]);
    try {
      const res = await fetch(this.callbackUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal,
        dispatcher: this.agent,
      });
      const body = await res.text();
      record.outcome = { kind: 'status', status: res.status, statusText: res.statusText, body };
    } catch (err) {
      const name = (err as { name?: string }).name;
      record.outcome = name === 'TimeoutError' ? { kind: 'timeout' } : { kind: 'network', message: (err as Error).message };
    }
    return record.outcome;
  }

  /** A crash: callbacks in flight are dropped, nothing more is sent. */
  abortAll(): void {
    this.aborter.abort();
    this.aborter = new AbortController();
  }

  async close(): Promise<void> {
    this.abortAll();
    await this.agent.close();
  }
}
