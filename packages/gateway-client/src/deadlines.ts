import { performance } from 'node:perf_hooks';

const TICK_MS = 20;

export interface AttemptDeadline {
  signal: AbortSignal;
  /** The attempt ended: forget it. */
  done(): void;
}

/**
 * Aborts attempts that outlive their deadline, with one shared timer ticking every 20 ms while any
 * attempt is open. `AbortSignal.timeout` creates a timer and weak references per request: about a
 * sixth of a send's CPU at thousands of sends per second. Deadlines fire up to one tick late; the
 * fence leaves more margin than that (see client.ts).
 */
export class AttemptDeadlines {
  private readonly open = new Map<AbortController, number>();
  private timer: NodeJS.Timeout | undefined;

  start(timeoutMs: number): AttemptDeadline {
    const controller = new AbortController();
    this.open.set(controller, performance.now() + timeoutMs);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), TICK_MS);
      this.timer.unref();
    }
    return { signal: controller.signal, done: () => this.finish(controller) };
  }

  private finish(controller: AbortController): void {
    this.open.delete(controller);
    if (this.open.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const [controller, deadline] of this.open) {
      if (deadline <= now) {
        this.open.delete(controller);
        controller.abort();
      }
    }
  }
}
