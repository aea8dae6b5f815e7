import { formatCursor, type StreamPosition } from '@iotsupport/contracts';
import { cutDocument, escapedDataBytes, eventDataBudget } from '@iotsupport/gateway-client';

export const DEVICE_LOGS_EVENT = 'device-logs';
const BUDGET = eventDataBudget(DEVICE_LOGS_EVENT);

/** One line to put into `device-logs` events. */
export interface EventLine {
  /** The stored document's JSON text. */
  json: string;
  /** The document (parsed from `json` when a cut needs it and it is not given). */
  doc?: Record<string, unknown>;
  /** Its id (Elasticsearch `_id`), when known. */
  id?: string;
  /** Its position in the device's stream, when known. */
  position?: StreamPosition;
}

/** One event's `data` and the position of its last line (undefined for lines without positions). */
export interface DeviceLogEventData {
  data: string;
  /** Positions of its first and last line (undefined for lines without positions). */
  first: StreamPosition | undefined;
  last: StreamPosition | undefined;
}

export interface EventDataOptions {
  /** LOG_ENTITY_FIELD: a cut document keeps it. */
  entityField: string;
  onTruncated?: () => void;
}

/**
 * Lines of one device → the `data` of its `device-logs` events, in line order:
 * `{"device_entity_id":"<eid>","logs":[doc, ...],"ids":[id, ...],"cursor":"<cursor of the last line>"}`
 * (`ids` when every line has an id, `cursor` when the lines have positions: docs/streams.md),
 * single-line JSON, split so every `/internal/send` body (token, event name, the JSON-escaped data
 * and a possible `dropped` marker) stays under 100 kB. A document too large for an event of its
 * own is cut on a code point boundary (gateway-client's cutDocument), keeping its id, entity id,
 * level and `@timestamp`. Built once per batch; the fan-out shares the events of a whole batch
 * with every connection that needs all of it.
 *
 * Sizes add up exactly: JSON escaping works character by character, so the escaped size of the
 * whole is the sum of the escaped sizes of its parts.
 */
export function deviceLogEventData(entityId: string, lines: readonly EventLine[], opts: EventDataOptions): DeviceLogEventData[] {
  const withIds = lines.length > 0 && lines.every((line) => line.id !== undefined);
  const head = `{"device_entity_id":${JSON.stringify(entityId)},"logs":[`;
  const idsHead = withIds ? '],"ids":[' : '';
  const frame = escapedDataBytes(head) + escapedDataBytes(idsHead) + escapedDataBytes(']}');
  const cursorBytes = (line: EventLine) => (line.position ? escapedDataBytes(`,"cursor":${JSON.stringify(formatCursor(line.position))}`) : 0);
  if (frame + cursorBytes(lines[lines.length - 1] ?? { json: '' }) >= BUDGET) return []; // an entity id of ~100 kB: nothing can be framed for it
  const out: DeviceLogEventData[] = [];
  let docs: string[] = [];
  let ids: string[] = [];
  let bytes = frame;
  let first: EventLine | undefined;
  let last: EventLine | undefined;
  const flush = () => {
    if (docs.length === 0) return;
    const cursor = last?.position ? `,"cursor":${JSON.stringify(formatCursor(last.position))}` : '';
    const idsPart = withIds ? `${idsHead}${ids.join(',')}` : '';
    out.push({ data: `${head}${docs.join(',')}${idsPart}]${cursor}}`, first: first?.position, last: last?.position });
    docs = [];
    ids = [];
    bytes = frame;
  };
  for (const line of lines) {
    const id = withIds ? JSON.stringify(line.id) : '';
    const idSize = withIds ? escapedDataBytes(id) : 0;
    let json = line.json;
    let size = escapedDataBytes(json);
    const room = BUDGET - frame - idSize - cursorBytes(line);
    if (size > room) {
      json = cutDocument(line.doc ?? (JSON.parse(json) as Record<string, unknown>), json, room, { entityField: opts.entityField, id: line.id });
      size = escapedDataBytes(json);
      opts.onTruncated?.();
    }
    const commas = docs.length > 0 ? (withIds ? 2 : 1) : 0;
    if (docs.length > 0 && bytes + size + idSize + commas + cursorBytes(line) > BUDGET) flush();
    bytes += size + idSize + (docs.length > 0 ? (withIds ? 2 : 1) : 0);
    if (docs.length === 0) first = line;
    docs.push(json);
    if (withIds) ids.push(id);
    last = line;
  }
  flush();
  return out;
}
