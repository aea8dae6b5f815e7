import { createHash } from 'node:crypto';

/**
 * Deterministic identities derived from the raw MQTT payload. MQTT gives a message no identity
 * that survives redelivery (packet ids are reused), so the payload's content is the identity: a
 * redelivered message yields the same document ids (Elasticsearch `create` then answers 409 and
 * nothing is stored twice) and the same fan-out batch ids (the api fleet drops the repeat).
 * Consequence: byte-identical payloads received on the same UTC day are one message.
 */

/** sha256 of the payload, base64url (43 characters). */
export function payloadDigest(payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('base64url');
}

/** `_id` of the document made from the line at `lineIndex` (0-based, counting every physical line). */
export function documentId(digest: string, lineIndex: number): string {
  return `${digest}-${lineIndex}`;
}

/** `batch_id` of one fan-out part of a message for one entity (unique per channel). */
export function channelBatchId(digest: string, part: number): string {
  return `${digest}.${part}`;
}

/** `${prefix}YYYY.MM.dd` of the UTC date of receipt. */
export function dailyIndexName(prefix: string, receivedAtMs: number): string {
  const d = new Date(receivedAtMs);
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  return `${prefix}${d.getUTCFullYear()}.${mm}.${dd}`;
}
