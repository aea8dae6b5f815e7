import stripAnsi from 'strip-ansi';
import { exceedsJsonDepth } from './json-depth.js';

/** What became of one non-empty NDJSON line (label of `iot_logsink_lines_received_total`). */
export type LineStatus = 'ok' | 'message_not_string' | 'invalid_utf8' | 'invalid_json' | 'not_object' | 'too_deep';

export const LINE_STATUSES: readonly LineStatus[] = ['ok', 'message_not_string', 'invalid_utf8', 'invalid_json', 'not_object', 'too_deep'];

/** Deeper lines are refused (see json-depth.ts); Elasticsearch itself stops at 20 object levels. */
export const MAX_JSON_DEPTH = 100;

/** Entity ids longer than this are not streamed (they become Redis channel names). */
export const MAX_ENTITY_ID_LENGTH = 256;

export type LogDocument = Record<string, unknown>;

export type ParsedLine =
  | { status: 'ok' | 'message_not_string'; doc: LogDocument; entityId: string | undefined }
  | { status: 'invalid_utf8' | 'invalid_json' | 'not_object' | 'too_deep' };

// fatal: invalid UTF-8 is an error, not U+FFFD silently stored in place of the device's bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Removes ANSI escape sequences (CSI incl. private modes, OSC ending in BEL or ST, two-character escapes). */
export function stripAnsiEscapes(text: string): string {
  return stripAnsi(text);
}

/** The entity id of a document: a non-empty string or a finite number (as a string), else none. */
export function entityIdOf(doc: LogDocument, entityField: string): string | undefined {
  const value = doc[entityField];
  if (typeof value === 'string') return value.length > 0 && value.length <= MAX_ENTITY_ID_LENGTH ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * One line → the document to store, or why it is skipped. The parsed object is edited in place
 * (so a key like "__proto__" stays an own field): `relative_time` dropped, `message` stripped of
 * ANSI escapes, `@timestamp` set to the receive time, every other field kept as sent.
 * A `message` that is not a string is stored as its JSON text, so the field keeps one type in
 * the index (an object there would be a mapping conflict and end in the dead letter).
 */
export function parseLogLine(bytes: Uint8Array, timestampIso: string, entityField: string): ParsedLine {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { status: 'invalid_utf8' };
  }
  if (exceedsJsonDepth(text, MAX_JSON_DEPTH)) return { status: 'too_deep' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { status: 'invalid_json' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { status: 'not_object' };
  const doc = value as LogDocument;
  delete doc.relative_time;
  let status: 'ok' | 'message_not_string' = 'ok';
  const message = doc.message;
  if (typeof message === 'string') {
    doc.message = stripAnsiEscapes(message);
  } else if (message !== undefined && message !== null) {
    doc.message = JSON.stringify(message, (_key, value: unknown) => (typeof value === 'string' ? stripAnsiEscapes(value) : value));
    status = 'message_not_string';
  }
  doc['@timestamp'] = timestampIso;
  return { status, doc, entityId: entityIdOf(doc, entityField) };
}
