import { Client, errors } from '@elastic/elasticsearch';

/** One `create` operation of a `_bulk` request. */
export interface CreateOp {
  index: string;
  id: string;
  doc: unknown;
  /** `doc` already serialized (saves serializing it again). */
  json?: string;
}

/** Per-item result of a `_bulk` request, in request order. */
export interface ItemResult {
  status: number;
  errorType?: string;
  errorReason?: string;
}

/** A `_bulk` request that failed as a whole (always retried by the store); `errorType` is the metric label. */
export class BulkRequestError extends Error {
  constructor(
    readonly errorType: 'connection' | 'timeout' | 'http_429' | 'http_5xx' | 'http_4xx' | 'other',
    cause: unknown,
  ) {
    super(`bulk request failed (${errorType}): ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'BulkRequestError';
  }
}

/** The store's view of Elasticsearch: what the retry logic needs and nothing more. */
export interface BulkApi {
  bulkCreate(ops: readonly CreateOp[]): Promise<ItemResult[]>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface EsConnection {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  requestTimeoutMs?: number;
}

type BulkOperations = NonNullable<Parameters<Client['bulk']>[0]>['operations'];

/** The only parts of a `_bulk` answer the store reads. */
const ITEM_FIELDS = ['items.*.status', 'items.*.error.type', 'items.*.error.reason'];

function classify(err: unknown): BulkRequestError {
  if (err instanceof errors.ResponseError) {
    const code = err.statusCode ?? 0;
    if (code === 429) return new BulkRequestError('http_429', err);
    if (code >= 500) return new BulkRequestError('http_5xx', err);
    // A whole request refused (413, 400 on the envelope) cannot be pinned on one line, so it is
    // retried like an outage rather than dead-lettering every line of the batch; metrics show it.
    return new BulkRequestError('http_4xx', err);
  }
  if (err instanceof errors.TimeoutError) return new BulkRequestError('timeout', err);
  if (err instanceof errors.ConnectionError || err instanceof errors.NoLivingConnectionsError) return new BulkRequestError('connection', err);
  return new BulkRequestError('other', err);
}

/**
 * The official client, with its own retries off (`maxRetries: 0`): every retry is the store's,
 * with its backoff and metrics, and re-sends only the items that still need it.
 */
export function createEsBulkApi(conn: EsConnection): BulkApi {
  const client = new Client({
    node: conn.url,
    ...(conn.username !== undefined && conn.password !== undefined ? { auth: { username: conn.username, password: conn.password } } : {}),
    maxRetries: 0,
    requestTimeout: conn.requestTimeoutMs ?? 30_000,
  });
  return {
    async bulkCreate(ops) {
      // The NDJSON body is built here from each line's serialization (the transport sends a string
      // as is), and the answer is cut down to what is read with filter_path.
      let body = '';
      for (const op of ops) body += `${JSON.stringify({ create: { _index: op.index, _id: op.id } })}\n${op.json ?? JSON.stringify(op.doc)}\n`;
      let response;
      try {
        response = await client.bulk({ operations: body as unknown as BulkOperations, refresh: false, filter_path: ITEM_FIELDS });
      } catch (err) {
        throw classify(err);
      }
      const items = response.items ?? [];
      if (items.length !== ops.length) {
        throw new BulkRequestError('other', new Error(`bulk answered ${items.length} items for ${ops.length} operations`));
      }
      return items.map((item) => {
        const r = item.create ?? Object.values(item)[0];
        if (!r) return { status: 0, errorType: 'missing_item' };
        return r.error ? { status: r.status, errorType: r.error.type, errorReason: r.error.reason ?? undefined } : { status: r.status };
      });
    },
    async ping() {
      try {
        return await client.ping({}, { requestTimeout: 1000 });
      } catch {
        return false;
      }
    },
    close: () => client.close(),
  };
}
