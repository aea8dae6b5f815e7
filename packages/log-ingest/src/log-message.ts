import { setImmediate as nextTurn } from 'node:timers/promises';
import { dailyIndexName, documentId, payloadDigest } from './ids.js';
import { LINE_STATUSES, parseLogLine, type LineStatus, type LogDocument } from './log-line.js';

/** What became of one MQTT message (label of `iot_logsink_messages_received_total`). */
export type MessageStatus = 'ok' | 'partial' | 'invalid' | 'empty';

/** One line to store: its deterministic `_id`, target index and document. */
export interface LogLine {
  id: string;
  index: string;
  doc: LogDocument;
  /** `doc` serialized once, for both the `_bulk` body and the fan-out. */
  json: string;
  entityId: string | undefined;
  /** Set by the store when Elasticsearch refused the line for good: it went to the dead letter and is not streamed. */
  deadLettered?: boolean;
}

export interface ParsedMessage {
  digest: string;
  receivedAtMs: number;
  lines: LogLine[];
  lineCounts: Record<LineStatus, number>;
  status: MessageStatus;
}

export interface ParseMessageOptions {
  indexPrefix: string;
  entityField: string;
  /** Lines parsed between two yields to the event loop (a 100,000-line message must not stall MQTT keepalives). */
  linesPerTurn?: number;
}

/** `payloadDigest(payload)` when the caller has it already. */
export interface KnownDigest {
  digest?: string;
}

const LF = 0x0a;
const CR = 0x0d;

function isBlank(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  return true;
}

/**
 * NDJSON payload → documents. Splits on LF at the byte level (LF never occurs inside a
 * multi-byte UTF-8 sequence), so one invalid line never spoils its neighbours. Empty lines are
 * ignored; line indexes count every physical line so `_id`s do not depend on what was skipped.
 */
export async function parseMqttMessage(payload: Uint8Array, receivedAtMs: number, opts: ParseMessageOptions & KnownDigest): Promise<ParsedMessage> {
  const digest = opts.digest ?? payloadDigest(payload);
  const index = dailyIndexName(opts.indexPrefix, receivedAtMs);
  const timestamp = new Date(receivedAtMs).toISOString();
  const linesPerTurn = opts.linesPerTurn ?? 1000;
  const lineCounts = Object.fromEntries(LINE_STATUSES.map((s) => [s, 0])) as Record<LineStatus, number>;
  const lines: LogLine[] = [];
  let start = 0;
  let lineIndex = 0;
  let sinceYield = 0;
  while (start <= payload.length) {
    let end = payload.indexOf(LF, start);
    if (end === -1) end = payload.length;
    const bytes = payload.subarray(start, end);
    if (!isBlank(bytes)) {
      const parsed = parseLogLine(bytes, timestamp, opts.entityField);
      lineCounts[parsed.status]++;
      if ('doc' in parsed) lines.push({ id: documentId(digest, lineIndex), index, doc: parsed.doc, json: JSON.stringify(parsed.doc), entityId: parsed.entityId });
      if (++sinceYield >= linesPerTurn) {
        sinceYield = 0;
        await nextTurn();
      }
    }
    start = end + 1;
    lineIndex++;
  }
  const skipped = lineCounts.invalid_utf8 + lineCounts.invalid_json + lineCounts.not_object + lineCounts.too_deep;
  const status: MessageStatus = lines.length === 0 ? (skipped === 0 ? 'empty' : 'invalid') : skipped === 0 ? 'ok' : 'partial';
  return { digest, receivedAtMs, lines, lineCounts, status };
}
