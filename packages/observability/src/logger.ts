import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** JSON lines on stdout, one logger per process; children carry the component name. */
export function createLogger(opts: { level: string; app: string; podId: string }): Logger {
  const options: LoggerOptions = {
    level: opts.level,
    base: { app: opts.app, pod: opts.podId },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Tokens and secrets must never reach the log stream.
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', '*.client_secret', 'secret'],
      censor: '[redacted]',
    },
  };
  // Synchronous writes: lines reach stdout in the order they were logged and none is lost at
  // process.exit (pino's default asynchronous stream let shutdown lines arrive out of order). Log
  // volume is low — no per-request lines — so the cost of a blocking write does not matter here.
  return pino(options, pino.destination({ fd: 1, sync: true }));
}
