import { setTimeout as sleepFor } from 'node:timers/promises';

export interface BackoffPolicy {
  /** First retry waits up to this long. */
  baseMs: number;
  /** No wait is ever longer (INGEST_RETRY_MAX_DELAY_MS). */
  capMs: number;
}

/**
 * Capped exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)].
 * Full jitter spreads the retries of many ingest pods after a shared outage instead of having
 * them hit Elasticsearch in lockstep. `attempt` counts from 0.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Waits `ms`; resolves early (false) when `signal` aborts, so a forced stop never hangs on a backoff. */
export async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await sleepFor(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
