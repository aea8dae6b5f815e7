import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';

export type ReadinessCheck = () => boolean | Promise<boolean>;
type ShutdownHook = () => Promise<void> | void;

/**
 * Readiness and the shutdown sequence every app uses.
 * SIGTERM → readiness 503 and `application_shutting_down` 1 → hooks run one after another in the
 * order they were added (apps add "stop taking work" first, "close clients" last) → exit 0.
 * Hooks that overrun GRACEFUL_SHUTDOWN_TIMEOUT are abandoned and the process exits 1, so an
 * orchestrator can tell a clean drain from a forced one.
 */
export class Lifecycle {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly hooks: Array<{ name: string; run: ShutdownHook }> = [];
  private shutdownPromise: Promise<number> | undefined;
  private stopping = false;

  constructor(
    private readonly logger: Logger,
    private readonly shuttingDownGauge: Gauge,
    private readonly timeoutSeconds: number,
  ) {}

  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Runs every check (each bounded to 1 s) and says which failed. */
  async readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
    const results: Record<string, boolean> = {};
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        results[name] = await withTimeout(Promise.resolve().then(check), 1000).catch(() => false);
      }),
    );
    results.accepting_work = !this.stopping;
    return { ready: Object.values(results).every(Boolean), checks: results };
  }

  onShutdown(name: string, run: ShutdownHook): void {
    this.hooks.push({ name, run });
  }

  /** Idempotent: a second SIGTERM waits for the first drain. Resolves to the exit code. */
  shutdown(reason: string): Promise<number> {
    this.shutdownPromise ??= this.drain(reason);
    return this.shutdownPromise;
  }

  private async drain(reason: string): Promise<number> {
    this.stopping = true;
    this.shuttingDownGauge.set(1);
    this.logger.info({ reason, timeoutSeconds: this.timeoutSeconds }, 'shutting down');
    const deadline = Date.now() + this.timeoutSeconds * 1000;
    for (const hook of this.hooks) {
      const left = deadline - Date.now();
      try {
        await withTimeout(Promise.resolve().then(hook.run), Math.max(left, 0));
        this.logger.info({ step: hook.name }, 'shutdown step done');
      } catch (err) {
        this.logger.error({ step: hook.name, err }, 'shutdown step failed or overran the timeout');
        return 1;
      }
    }
    this.logger.info('shutdown complete');
    return 0;
  }

  /** SIGTERM/SIGINT start the drain; the process exits with its result. */
  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    const onSignal = (signal: NodeJS.Signals) => {
      void this.shutdown(signal).then(exit);
    };
    // `on`, not `once`: a second SIGTERM (an impatient orchestrator, Ctrl-C twice) must not fall
    // back to Node's default and kill the drain halfway; `shutdown` is idempotent.
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  /**
   * An uncaught exception or unhandled rejection is logged once, at fatal level with the error,
   * then the ordered drain runs (readiness 503, listeners and clients closed as on SIGTERM) and the
   * process exits 1 whatever the drain's result: the orchestrator sees a crash and restarts it.
   * Errors raised while that drain runs are logged too, but start nothing new.
   */
  installCrashHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    let crashed = false;
    const onCrash = (origin: 'uncaughtException' | 'unhandledRejection') => (reason: unknown) => {
      const err = reason instanceof Error ? reason : new Error(`non-error value: ${String(reason)}`);
      if (crashed) {
        this.logger.error({ err, origin }, 'another error while draining after a crash');
        return;
      }
      crashed = true;
      this.logger.fatal({ err, origin }, 'process crashed: draining, then exit 1');
      void this.shutdown(origin).then(() => exit(1));
    };
    process.on('uncaughtException', onCrash('uncaughtException'));
    process.on('unhandledRejection', onCrash('unhandledRejection'));
  }
}

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
