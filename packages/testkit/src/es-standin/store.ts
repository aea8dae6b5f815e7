import { randomBytes } from 'node:crypto';

/** One document as the stand-in keeps it: what a `GET /{index}/_doc/{id}` would return. */
export interface StoredDocument {
  index: string;
  id: string;
  source: Record<string, unknown>;
  version: number;
  seqNo: number;
}

/** The outcome of one write, shaped like the fields of an Elasticsearch bulk item. */
export type WriteOutcome =
  | { ok: true; status: 200 | 201; result: 'created' | 'updated' | 'deleted'; doc: StoredDocument }
  | { ok: true; status: 404; result: 'not_found'; version: number; seqNo: number }
  | { ok: false; status: 404 | 409; type: string; reason: string };

export type WriteAction = 'index' | 'create' | 'delete' | 'update';

/** The same shape Elasticsearch gives auto-generated ids: 20 URL-safe base64 characters. */
export function autoId(): string {
  return randomBytes(15).toString('base64url');
}

/** `logs-*,other` style index expressions, as `_count` and friends accept them. */
export function matchesIndexExpression(expression: string, index: string): boolean {
  return expression.split(',').some((part) => {
    const pattern = part.trim();
    if (pattern === '' || pattern === '_all' || pattern === '*') return true;
    const regex = new RegExp(`^${pattern.split('*').map(escapeRegex).join('.*')}$`);
    return regex.test(index);
  });
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The documents, by index and `_id`, with the version and sequence numbers Elasticsearch reports.
 * Deliberately in memory and single-shard: tests assert on content and ids, not on cluster layout.
 */
export class DocumentStore {
  private readonly indices = new Map<string, Map<string, StoredDocument>>();
  private seqNo = 0;

  createIndex(index: string): boolean {
    if (this.indices.has(index)) return false;
    this.indices.set(index, new Map());
    return true;
  }

  deleteIndex(index: string): boolean {
    return this.indices.delete(index);
  }

  hasIndex(index: string): boolean {
    return this.indices.has(index);
  }

  indexNames(): string[] {
    return [...this.indices.keys()].sort();
  }

  get(index: string, id: string): StoredDocument | undefined {
    return this.indices.get(index)?.get(id);
  }

  /** Every document of the indices matching `expression` (all indices when omitted), in insertion order. */
  documents(expression?: string): StoredDocument[] {
    const out: StoredDocument[] = [];
    for (const [name, docs] of this.indices) {
      if (expression === undefined || matchesIndexExpression(expression, name)) out.push(...docs.values());
    }
    return out;
  }

  clear(): void {
    this.indices.clear();
  }

  /** Applies one write the way Elasticsearch does (auto-creating the index). */
  write(action: WriteAction, index: string, id: string, body: Record<string, unknown> | undefined): WriteOutcome {
    const docs = this.indices.get(index);
    const existing = docs?.get(id);
    switch (action) {
      case 'create':
        if (existing) {
          return {
            ok: false,
            status: 409,
            type: 'version_conflict_engine_exception',
            reason: `[${id}]: version conflict, document already exists (current version [${existing.version}])`,
          };
        }
        return this.put(index, id, body ?? {}, undefined);
      case 'index':
        return this.put(index, id, body ?? {}, existing);
      case 'update': {
        const partial = (body?.doc ?? {}) as Record<string, unknown>;
        if (!existing) {
          if (body?.doc_as_upsert === true) return this.put(index, id, partial, undefined);
          if (body?.upsert && typeof body.upsert === 'object') return this.put(index, id, body.upsert as Record<string, unknown>, undefined);
          return { ok: false, status: 404, type: 'document_missing_exception', reason: `[${id}]: document missing` };
        }
        return this.put(index, id, { ...existing.source, ...partial }, existing);
      }
      case 'delete': {
        if (!existing || !docs) return { ok: true, status: 404, result: 'not_found', version: 1, seqNo: this.seqNo++ };
        docs.delete(id);
        const doc = { ...existing, version: existing.version + 1, seqNo: this.seqNo++ };
        return { ok: true, status: 200, result: 'deleted', doc };
      }
    }
  }

  private put(index: string, id: string, source: Record<string, unknown>, existing: StoredDocument | undefined): WriteOutcome {
    let docs = this.indices.get(index);
    if (!docs) {
      docs = new Map();
      this.indices.set(index, docs);
    }
    const doc: StoredDocument = { index, id, source, version: (existing?.version ?? 0) + 1, seqNo: this.seqNo++ };
    docs.set(id, doc);
    return existing
      ? { ok: true, status: 200, result: 'updated', doc }
      : { ok: true, status: 201, result: 'created', doc };
  }
}

/** Reads `a.b.c` from a document (nested objects, or a literal dotted key as Elasticsearch also allows). */
function fieldValue(source: Record<string, unknown>, path: string): unknown {
  if (path in source) return source[path];
  let current: unknown = source;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/**
 * The query subset `_count` understands: `match_all`, and `term`/`match` as exact equality on one
 * field. Returns null for anything else so the caller answers 400 instead of a wrong count.
 */
export function compileQuery(query: unknown): ((doc: StoredDocument) => boolean) | null {
  if (query === undefined) return () => true;
  if (typeof query !== 'object' || query === null) return null;
  const [kind, spec] = Object.entries(query)[0] ?? [];
  if (kind === 'match_all') return () => true;
  if ((kind === 'term' || kind === 'match') && typeof spec === 'object' && spec !== null) {
    const [field, raw] = Object.entries(spec)[0] ?? [];
    if (field === undefined) return null;
    const expected = typeof raw === 'object' && raw !== null ? ((raw as Record<string, unknown>).value ?? (raw as Record<string, unknown>).query) : raw;
    return (doc) => fieldValue(doc.source, field) === expected;
  }
  return null;
}
