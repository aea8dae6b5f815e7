import { request } from 'node:http';
import { createParser } from 'eventsource-parser';

/**
 * A bench-side browser: one SSE stream whose events are handed over the moment the parser has
 * them, with the arrival time. (testkit's openSse keeps every message and wakes its waiters on
 * each one, which costs more than the thing being measured at thousands of events per second.)
 */
export interface StampedStream {
  ready: Promise<void>;
  close(): void;
}

export function openStampedStream(url: string, onEvent: (data: string, arrivedMs: number) => void): StampedStream {
  let markReady!: () => void;
  let fail!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  const parser = createParser({
    onEvent: (event) => {
      if (event.event === 'ready') markReady();
      else if (event.event === undefined) onEvent(event.data, performance.timeOrigin + performance.now());
    },
  });
  const req = request(url, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => parser.feed(chunk));
    res.on('error', () => undefined);
  });
  req.on('error', (err) => fail(err));
  req.end();
  return { ready, close: () => req.destroy() };
}
