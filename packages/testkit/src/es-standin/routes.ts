import type { ServerResponse } from 'node:http';
import { executeBulk, invalidIndexReason, itemFromOutcome, parseBulkBody, type BulkItemResponse, type BulkOperation } from './bulk.js';
import type { FaultControls } from './faults.js';
import { esErrorBody, reply, STANDIN_VERSION, type ReplyContext } from './responses.js';
import { autoId, compileQuery, type DocumentStore, type WriteAction } from './store.js';

/** What the stand-in remembers of each `_bulk` call, for assertions. */
export interface BulkRequestRecord {
  path: string;
  /** The raw NDJSON body as received (after gunzip). */
  body: string;
  contentType: string | undefined;
  status: number;
  operations: BulkOperation[];
  /** The response's `items`, empty when the whole request failed. */
  items: BulkItemResponse[];
  errors: boolean;
}

export interface RouteContext {
  store: DocumentStore;
  faults: FaultControls;
  recordBulk(record: BulkRequestRecord): void;
}

export interface ParsedRequest {
  method: string;
  segments: string[];
  path: string;
  body: string;
  contentType: string | undefined;
}

const SHARDS_ONE = { total: 1, successful: 1, skipped: 0, failed: 0 };

function parseJsonBody(body: string): { ok: true; value: Record<string, unknown> | undefined } | { ok: false; reason: string } {
  if (body.trim() === '') return { ok: true, value: undefined };
  try {
    const value: unknown = JSON.parse(body);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'request body must be a JSON object' };
    return { ok: true, value: value as Record<string, unknown> };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

function clusterInfo(): Record<string, unknown> {
  return {
    name: 'es-standin',
    cluster_name: 'iotsupport-standin',
    cluster_uuid: 'c0ffee00-0000-4000-8000-000000000000',
    version: {
      number: STANDIN_VERSION,
      build_flavor: 'default',
      build_type: 'docker',
      build_hash: 'standin',
      build_date: '2026-01-01T00:00:00.000Z',
      build_snapshot: false,
      lucene_version: '10.2.0',
      minimum_wire_compatibility_version: '8.19.0',
      minimum_index_compatibility_version: '8.0.0',
    },
    tagline: 'You Know, for Search',
  };
}

/** Routes one request that has passed the outage, failure and media-type checks. */
export function route(ctx: RouteContext, req: ParsedRequest, res: ServerResponse, rc: ReplyContext): void {
  const { method, segments } = req;
  const [first, second, third] = segments;
  const send = (status: number, body: unknown): void => reply(res, rc, status, body);

  if (segments.length === 0 && (method === 'GET' || method === 'HEAD')) return send(200, clusterInfo());

  const isBulk = (first === '_bulk' && segments.length === 1) || (second === '_bulk' && segments.length === 2);
  if (isBulk && (method === 'POST' || method === 'PUT')) return bulk(ctx, req, send, first === '_bulk' ? undefined : first);

  if (first !== undefined && (first === '_count' || second === '_count') && (method === 'GET' || method === 'POST')) {
    return count(ctx, req, send, first === '_count' ? undefined : first);
  }
  if ((first === '_refresh' || second === '_refresh') && (method === 'GET' || method === 'POST')) {
    return send(200, { _shards: { total: 2, successful: 1, failed: 0 } });
  }

  if (first !== undefined && !first.startsWith('_') && segments.length === 1) return indexLevel(ctx, method, first, send);

  if (first !== undefined && (second === '_doc' || second === '_create')) {
    return singleDocument(ctx, req, send, first, second, third);
  }
  send(400, { error: `no handler found for uri [${req.path}] and method [${method}]`, status: 400 });
}

function bulk(ctx: RouteContext, req: ParsedRequest, send: (s: number, b: unknown) => void, pathIndex: string | undefined): void {
  const started = Date.now();
  const parsed = parseBulkBody(req.body, pathIndex);
  const record = (status: number, operations: BulkOperation[], items: BulkItemResponse[], errors: boolean): void =>
    ctx.recordBulk({ path: req.path, body: req.body, contentType: req.contentType, status, operations, items, errors });
  if (!parsed.ok) {
    record(parsed.status, [], [], true);
    return send(parsed.status, parsed.body);
  }
  const items = executeBulk(parsed.operations, ctx.store, ctx.faults);
  const errors = items.some((item) => Object.values(item).some((r) => 'error' in r));
  record(200, parsed.operations, items, errors);
  send(200, { errors, took: Date.now() - started, items });
}

function count(ctx: RouteContext, req: ParsedRequest, send: (s: number, b: unknown) => void, expression: string | undefined): void {
  const body = parseJsonBody(req.body);
  if (!body.ok) return send(400, esErrorBody(400, 'parsing_exception', body.reason));
  const matcher = compileQuery(body.value?.query);
  if (!matcher) return send(400, esErrorBody(400, 'parsing_exception', 'the stand-in supports only match_all, term and match (exact) queries'));
  if (expression !== undefined && !expression.includes('*') && !expression.split(',').every((i) => ctx.store.hasIndex(i))) {
    return send(404, esErrorBody(404, 'index_not_found_exception', `no such index [${expression}]`, { index: expression }));
  }
  const docs = ctx.store.documents(expression).filter(matcher);
  send(200, { count: docs.length, _shards: SHARDS_ONE });
}

function indexLevel(ctx: RouteContext, method: string, index: string, send: (s: number, b: unknown) => void): void {
  if (method === 'HEAD' || method === 'GET') {
    if (!ctx.store.hasIndex(index)) return send(404, esErrorBody(404, 'index_not_found_exception', `no such index [${index}]`, { index }));
    return send(200, { [index]: { aliases: {}, mappings: {}, settings: {} } });
  }
  if (method === 'PUT') {
    const bad = invalidIndexReason(index);
    if (bad) return send(400, esErrorBody(400, 'invalid_index_name_exception', bad, { index }));
    if (!ctx.store.createIndex(index)) {
      return send(400, esErrorBody(400, 'resource_already_exists_exception', `index [${index}] already exists`, { index }));
    }
    return send(200, { acknowledged: true, shards_acknowledged: true, index });
  }
  if (method === 'DELETE') {
    if (!ctx.store.deleteIndex(index)) return send(404, esErrorBody(404, 'index_not_found_exception', `no such index [${index}]`, { index }));
    return send(200, { acknowledged: true });
  }
  send(405, { error: `Incorrect HTTP method for uri [/${index}] and method [${method}], allowed: [HEAD, DELETE, PUT, GET]`, status: 405 });
}

function singleDocument(
  ctx: RouteContext,
  req: ParsedRequest,
  send: (s: number, b: unknown) => void,
  index: string,
  endpoint: '_doc' | '_create',
  id: string | undefined,
): void {
  const { method } = req;
  if (endpoint === '_doc' && id !== undefined && (method === 'GET' || method === 'HEAD')) {
    if (!ctx.store.hasIndex(index)) return send(404, esErrorBody(404, 'index_not_found_exception', `no such index [${index}]`, { index }));
    const doc = ctx.store.get(index, id);
    if (!doc) return send(404, { _index: index, _id: id, found: false });
    return send(200, { _index: index, _id: id, _version: doc.version, _seq_no: doc.seqNo, _primary_term: 1, found: true, _source: doc.source });
  }
  let action: WriteAction | undefined;
  if (endpoint === '_doc' && method === 'DELETE' && id !== undefined) action = 'delete';
  else if (endpoint === '_create' && id !== undefined && (method === 'PUT' || method === 'POST')) action = 'create';
  else if (endpoint === '_doc' && (method === 'PUT' || method === 'POST') && (id !== undefined || method === 'POST')) action = 'index';
  if (!action) return send(405, { error: `Incorrect HTTP method for uri [${req.path}] and method [${method}]`, status: 405 });

  const bad = invalidIndexReason(index);
  if (bad) return send(400, esErrorBody(400, 'invalid_index_name_exception', bad, { index }));
  let document: Record<string, unknown> | undefined;
  if (action !== 'delete') {
    const body = parseJsonBody(req.body);
    if (!body.ok) return send(400, esErrorBody(400, 'document_parsing_exception', `[1:1] failed to parse: ${body.reason}`));
    if (!body.value) return send(400, esErrorBody(400, 'action_request_validation_exception', 'Validation Failed: 1: source is missing;'));
    document = body.value;
  }
  const docId = id ?? autoId();
  const injected = ctx.faults.takeItemError({ action, index, id: docId, document });
  if (injected) return send(injected.status, esErrorBody(injected.status, injected.type, injected.reason, { index }));
  const item = itemFromOutcome({ _index: index, _id: docId }, ctx.store.write(action, index, docId, document));
  const status = item.status as number;
  if ('error' in item) {
    const error = item.error as { type: string; reason: string };
    return send(status, esErrorBody(status, error.type, error.reason, { index }));
  }
  const { status: _status, ...body } = item;
  send(status, body);
}
