import { esErrorBody } from './responses.js';
import { autoId, type DocumentStore, type WriteAction, type WriteOutcome } from './store.js';
import type { FaultControls } from './faults.js';

/** One parsed bulk operation: the action line plus, except for delete, its source line. */
export interface BulkOperation {
  action: WriteAction;
  index: string;
  id: string;
  /** Whether `_id` was generated because the action line had none. */
  autoId: boolean;
  /** Parsed source line; `undefined` for delete or when the line was not a JSON object. */
  document: Record<string, unknown> | undefined;
  /** Why the source line could not be parsed (turns into a per-item 400, as in Elasticsearch). */
  sourceError?: string;
}

export type BulkParse = { ok: true; operations: BulkOperation[] } | { ok: false; status: number; body: Record<string, unknown> };

const ACTIONS = new Set<WriteAction>(['index', 'create', 'delete', 'update']);
/** Metadata Elasticsearch accepts on an action line; anything else is refused. */
const KNOWN_METADATA = new Set([
  '_index', '_id', 'routing', 'pipeline', 'if_seq_no', 'if_primary_term', 'version', 'version_type', 'require_alias',
  'require_data_stream', 'retry_on_conflict', 'dynamic_templates', '_source', 'list_executed_pipelines', 'op_type',
]);

function illegal(reason: string): BulkParse {
  return { ok: false, status: 400, body: esErrorBody(400, 'illegal_argument_exception', reason) };
}

/**
 * Parses the `_bulk` NDJSON body with Elasticsearch's rules: newline-terminated, one action line
 * (a single-key object) per operation, a source line after index/create/update. Structural errors
 * fail the whole request with 400; an unparsable *source* line only fails its item.
 */
export function parseBulkBody(body: string, defaultIndex: string | undefined): BulkParse {
  if (body.trim() === '') {
    return { ok: false, status: 400, body: esErrorBody(400, 'action_request_validation_exception', 'Validation Failed: 1: no requests added;') };
  }
  if (!body.endsWith('\n')) return illegal('The bulk request must be terminated by a newline [\\n]');
  const lines = body.slice(0, -1).split('\n');
  const operations: BulkOperation[] = [];
  const missingIndex: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i] ?? '';
    if (raw.trim() === '') continue; // Elasticsearch skips empty lines between operations
    let actionLine: unknown;
    try {
      actionLine = JSON.parse(raw);
    } catch (err) {
      return {
        ok: false,
        status: 400,
        body: esErrorBody(400, 'x_content_parse_exception', `[${lineNo}:1] Unexpected token in action/metadata line: ${(err as Error).message}`),
      };
    }
    if (typeof actionLine !== 'object' || actionLine === null || Array.isArray(actionLine)) {
      return illegal(`Malformed action/metadata line [${lineNo}], expected START_OBJECT but found [${Array.isArray(actionLine) ? 'START_ARRAY' : 'VALUE'}]`);
    }
    const keys = Object.keys(actionLine);
    const action = keys[0] as WriteAction | undefined;
    if (keys.length !== 1 || action === undefined || !ACTIONS.has(action)) {
      return illegal(`Malformed action/metadata line [${lineNo}], expected field [create], [delete], [index] or [update] but found [${keys.join(', ')}]`);
    }
    const meta = (actionLine as Record<string, unknown>)[action];
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
      return illegal(`Malformed action/metadata line [${lineNo}], expected START_OBJECT but found [VALUE]`);
    }
    const unknown = Object.keys(meta).find((k) => !KNOWN_METADATA.has(k));
    if (unknown !== undefined) return illegal(`Action/metadata line [${lineNo}] contains an unknown parameter [${unknown}]`);
    const m = meta as Record<string, unknown>;
    const index = typeof m._index === 'string' ? m._index : defaultIndex;
    if (index === undefined) missingIndex.push(operations.length + 1);
    const givenId = typeof m._id === 'string' ? m._id : typeof m._id === 'number' ? String(m._id) : undefined;
    if (givenId === undefined && (action === 'delete' || action === 'update')) {
      return { ok: false, status: 400, body: esErrorBody(400, 'action_request_validation_exception', `Validation Failed: 1: id is missing;`) };
    }
    const op: BulkOperation = { action, index: index ?? '', id: givenId ?? autoId(), autoId: givenId === undefined, document: undefined };
    if (action !== 'delete') {
      i += 1;
      if (i >= lines.length) return illegal(`Malformed action/metadata line [${lineNo}], expected a source line after it`);
      parseSource(lines[i] ?? '', i + 1, op);
    }
    operations.push(op);
  }
  if (operations.length === 0) {
    return { ok: false, status: 400, body: esErrorBody(400, 'action_request_validation_exception', 'Validation Failed: 1: no requests added;') };
  }
  if (missingIndex.length > 0) {
    const reasons = missingIndex.map((_n, k) => `${k + 1}: index is missing;`).join(' ');
    return { ok: false, status: 400, body: esErrorBody(400, 'action_request_validation_exception', `Validation Failed: ${reasons}`) };
  }
  return { ok: true, operations };
}

function parseSource(line: string, lineNo: number, op: BulkOperation): void {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      op.document = parsed as Record<string, unknown>;
    } else {
      op.sourceError = `[${lineNo}:1] failed to parse: Root of the document must be an object`;
    }
  } catch (err) {
    op.sourceError = `[${lineNo}:1] failed to parse: ${(err as Error).message}`;
  }
}

/** One entry of the response's `items`: `{ "<action>": { _index, _id, status, result | error, ... } }`. */
export type BulkItemResponse = Record<string, Record<string, unknown>>;

const INVALID_INDEX = /[A-Z\\/*?"<>| ,#:]/;

/** The checks Elasticsearch makes on an index name before writing to it. */
export function invalidIndexReason(index: string): string | null {
  if (index !== index.toLowerCase()) return `Invalid index name [${index}], must be lowercase`;
  if (/^[-_+]/.test(index)) return `Invalid index name [${index}], must not start with '_', '-', or '+'`;
  if (INVALID_INDEX.test(index) || index === '.' || index === '..') return `Invalid index name [${index}], must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?, #, :]`;
  return null;
}

/** Runs each operation in order (fault rules first, then the store) and builds the item list. */
export function executeBulk(operations: BulkOperation[], store: DocumentStore, faults: FaultControls): BulkItemResponse[] {
  return operations.map((op) => {
    const base = { _index: op.index, _id: op.id };
    const fail = (status: number, type: string, reason: string): BulkItemResponse => ({
      [op.action]: { ...base, status, error: { type, reason, index: op.index } },
    });
    const badIndex = invalidIndexReason(op.index);
    if (badIndex) return fail(400, 'invalid_index_name_exception', badIndex);
    if (op.sourceError) return fail(400, 'document_parsing_exception', op.sourceError);
    const injected = faults.takeItemError({ action: op.action, index: op.index, id: op.id, document: op.document });
    if (injected) return fail(injected.status, injected.type, injected.reason);
    return { [op.action]: itemFromOutcome(base, store.write(op.action, op.index, op.id, op.document)) };
  });
}

/** The item fields of one write outcome, as `_bulk` and the single-document APIs report them. */
export function itemFromOutcome(base: { _index: string; _id: string }, outcome: WriteOutcome): Record<string, unknown> {
  if (!outcome.ok) return { ...base, status: outcome.status, error: { type: outcome.type, reason: outcome.reason, index: base._index } };
  const version = outcome.result === 'not_found' ? outcome.version : outcome.doc.version;
  const seqNo = outcome.result === 'not_found' ? outcome.seqNo : outcome.doc.seqNo;
  return {
    ...base,
    _version: version,
    result: outcome.result,
    _shards: { total: 2, successful: 1, failed: 0 },
    _seq_no: seqNo,
    _primary_term: 1,
    status: outcome.status,
  };
}
