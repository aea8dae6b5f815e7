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
  return pino(options);
}
