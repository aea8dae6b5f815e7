import { escapedDataBytes, eventDataBudget } from '@iotsupport/gateway-client';

export const DEVICE_LOGS_EVENT = 'device-logs';
const BUDGET = eventDataBudget(DEVICE_LOGS_EVENT);

/**
 * One ingest batch → the `data` of its `device-logs` events:
 * `{"device_entity_id":"<eid>","logs":[doc, ...]}`, single-line JSON, split so every
 * `/internal/send` body (token, event name, the JSON-escaped data and a possible `dropped` marker)
 * stays under 100 kB. Docs keep their order across the pieces. Built once per batch; the fan-out
 * prepares (serialises) each event once and shares it with every watching connection.
 *
 * Sizes add up exactly: JSON escaping works character by character, so the escaped size of the
 * whole is the sum of the escaped sizes of its parts.
 */
export function deviceLogEventData(entityId: string, docs: readonly Record<string, unknown>[], onTruncated?: () => void): string[] {
  const head = `{"device_entity_id":${JSON.stringify(entityId)},"logs":[`;
  const tail = ']}';
  const frame = escapedDataBytes(head) + escapedDataBytes(tail);
  if (frame >= BUDGET) return []; // an entity id of ~100 kB: nothing can be framed for it
  const out: string[] = [];
  let pieces: string[] = [];
  let bytes = frame;
  for (const doc of docs) {
    let json = JSON.stringify(doc);
    let size = escapedDataBytes(json);
    if (frame + size > BUDGET) {
      json = truncatedDoc(doc, json, BUDGET - frame);
      size = escapedDataBytes(json);
      onTruncated?.();
    }
    const extra = size + (pieces.length > 0 ? 1 : 0); // the comma
    if (pieces.length > 0 && bytes + extra > BUDGET) {
      out.push(head + pieces.join(',') + tail);
      pieces = [];
      bytes = frame;
    }
    bytes += size + (pieces.length > 0 ? 1 : 0);
    pieces.push(json);
  }
  if (pieces.length > 0) out.push(head + pieces.join(',') + tail);
  return out;
}

/**
 * A single doc larger than a whole event: its `@timestamp` and the start of its message (or of its
 * JSON), marked `truncated` with the original size, so the browser shows that the line was cut.
 */
function truncatedDoc(doc: Record<string, unknown>, json: string, room: number): string {
  const text = typeof doc.message === 'string' ? doc.message : json;
  const base = { '@timestamp': doc['@timestamp'], truncated: true, original_bytes: Buffer.byteLength(json), message: '' };
  let keep = Math.min(text.length, room);
  for (;;) {
    const candidate = JSON.stringify({ ...base, message: text.slice(0, keep) });
    if (escapedDataBytes(candidate) <= room || keep === 0) return candidate;
    // Shrink by the overshoot at least, in characters (escaping can make one character several bytes).
    keep = Math.max(0, Math.min(keep - 1, Math.floor(keep * 0.9)));
  }
}
