import { randomBytes } from 'node:crypto';

/** How much of each device's history the stream keeps, and how long the rest of its state lives. */
export interface StreamRetention {
  /** LOG_STREAM_MAX_LINES. */
  maxLines: number;
  /** LOG_STREAM_MAX_AGE_SECONDS, in ms; also the expiry of an idle device's stream. */
  maxAgeMs: number;
  /**
   * Expiry of the head (the epoch) and of the batch ids, renewed at each append: as long as a
   * batch may still be redelivered (ingest's MQTT session expiry), so a redelivery is recognised.
   */
  headTtlMs: number;
  /**
   * Batch ids remembered per device. A redelivery after a crash repeats only messages that were
   * not acknowledged, at most ingest's in-flight window, each one batch per device (more for
   * messages over 256 KiB of one device's docs): this must exceed that.
   */
  rememberedBatches: number;
}

export interface RetentionSettings {
  LOG_STREAM_MAX_LINES: number;
  LOG_STREAM_MAX_AGE_SECONDS: number;
  INGEST_MAX_INFLIGHT: number;
  INGEST_SESSION_EXPIRY_SECONDS: number;
}

export function streamRetention(settings: RetentionSettings): StreamRetention {
  return {
    maxLines: settings.LOG_STREAM_MAX_LINES,
    maxAgeMs: settings.LOG_STREAM_MAX_AGE_SECONDS * 1000,
    headTtlMs: Math.max(settings.INGEST_SESSION_EXPIRY_SECONDS, settings.LOG_STREAM_MAX_AGE_SECONDS) * 1000,
    rememberedBatches: Math.max(1024, 4 * settings.INGEST_MAX_INFLIGHT),
  };
}

/** A fresh epoch name (12 characters of base64url); the scripts use it only when a device has none. */
export function epochCandidate(): string {
  return randomBytes(9).toString('base64url');
}
