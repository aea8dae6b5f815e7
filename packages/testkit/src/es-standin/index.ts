import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import { FaultControls, type ItemRejectionOptions, type OutageMode, type RequestFailureOptions } from './faults.js';
import { checkMediaTypes, esErrorBody, reply, type ReplyContext } from './responses.js';
import { route, type BulkRequestRecord } from './routes.js';
import { DocumentStore, type StoredDocument } from './store.js';
import { readRequestBody } from '../http-body.js';

export type { BulkItemInfo, ItemRejectionOptions, OutageMode, RequestFailureOptions } from './faults.js';
export type { BulkRequestRecord } from './routes.js';
export type { BulkOperation, BulkItemResponse } from './bulk.js';
export type { StoredDocument } from './store.js';

export interface ElasticsearchStandinOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** How many request / bulk records are kept (oldest dropped first), so `make dev` does not grow forever. */
  historyLimit?: number;
}

/** What the stand-in remembers of every HTTP request (headers as received). */
export interface RequestRecord {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface ElasticsearchStandin {
  /** `http://127.0.0.1:<port>`: pass it as the client's `node`. */
  url: string;
  port: number;
  stop(): Promise<void>;

  /** Stored documents of the indices matching `index` (`logs-*`, comma lists), all when omitted. */
  documents(index?: string): StoredDocument[];
  /** The `_source` of one document, or undefined. */
  get(index: string, id: string): Record<string, unknown> | undefined;
  count(index?: string): number;
  indices(): string[];
  bulkRequests(): BulkRequestRecord[];
  requests(): RequestRecord[];
  /** Drops every document, index and record (fault switches stay as they are). */
  clear(): void;

  /** The node becomes unreachable (see OutageMode); 'reset' by default. */
  outage(mode?: OutageMode): Promise<void>;
  endOutage(): Promise<void>;
  /** Whole requests fail with `status` (503 by default) for the next `count` requests (all by default). */
  failRequests(options?: RequestFailureOptions): void;
  stopFailingRequests(): void;
  /** Single bulk items fail with 429/400 (next N items, or those matching `when`). Rules stack. */
  rejectItems(options: ItemRejectionOptions): void;
  stopRejectingItems(): void;
  /** Stops (or resumes) sending `x-elastic-product: Elasticsearch`: the official client then refuses every answer. */
  omitProductHeader(omit?: boolean): void;
  /** Ends any outage and turns every failure switch off. */
  resetFaults(): Promise<void>;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

async function readBody(req: IncomingMessage): Promise<string> {
  let raw = await readRequestBody(req);
  const encoding = (req.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding.includes('gzip')) raw = await gunzipAsync(raw);
  else if (encoding.includes('deflate')) raw = await inflateAsync(raw);
  return raw.toString('utf8');
}

/** Starts an in-process Elasticsearch stand-in on loopback that the official 9.x client accepts. */
export async function startElasticsearchStandin(options: ElasticsearchStandinOptions = {}): Promise<ElasticsearchStandin> {
  const host = options.host ?? '127.0.0.1';
  const historyLimit = options.historyLimit ?? 10_000;
  const store = new DocumentStore();
  const faults = new FaultControls();
  const sockets = new Set<Socket>();
  const hung = new Set<ServerResponse>();
  let bulkLog: BulkRequestRecord[] = [];
  let requestLog: RequestRecord[] = [];
  const remember = <T>(log: T[], entry: T): void => {
    log.push(entry);
    if (log.length > historyLimit) log.splice(0, log.length - historyLimit);
  };
  const ctx = { store, faults, recordBulk: (r: BulkRequestRecord) => remember(bulkLog, r) };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://standin');
    remember(requestLog, { method, path: url.pathname + url.search, headers: req.headers });
    if (faults.outage === 'hang') {
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    const body = await readBody(req);
    const rc: ReplyContext = { productHeader: faults.productHeader, compatibleWith: undefined, head: method === 'HEAD' };
    const media = checkMediaTypes(req, body.length > 0);
    if (!media.ok) return reply(res, rc, media.status, media.body);
    rc.compatibleWith = media.compatibleWith;
    const failure = faults.takeRequestFailure();
    if (failure) return reply(res, rc, failure.status, esErrorBody(failure.status, failure.type, failure.reason));
    const segments = url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    route(ctx, { method, segments, path: url.pathname, body, contentType: req.headers['content-type'] }, res, rc);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      reply(res, { productHeader: faults.productHeader, compatibleWith: undefined, head: false }, 500,
        esErrorBody(500, 'exception', `stand-in failure: ${(err as Error).message}`));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket) => {
    if (faults.outage === 'reset') return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const closeListener = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen(options.port ?? 0);
  const port = (server.address() as AddressInfo).port;

  const standin: ElasticsearchStandin = {
    url: `http://${host}:${port}`,
    port,
    async stop() {
      for (const res of hung) res.destroy();
      await closeListener();
    },
    documents: (index) => store.documents(index),
    get: (index, id) => store.get(index, id)?.source,
    count: (index) => store.documents(index).length,
    indices: () => store.indexNames(),
    bulkRequests: () => [...bulkLog],
    requests: () => [...requestLog],
    clear() {
      store.clear();
      bulkLog = [];
      requestLog = [];
    },
    async outage(mode = 'reset') {
      if (faults.outage === 'refuse' && mode !== 'refuse') await listen(port);
      faults.outage = mode;
      if (mode === 'refuse') await closeListener();
      else if (mode === 'reset') for (const socket of sockets) socket.destroy();
    },
    async endOutage() {
      const previous = faults.outage;
      faults.outage = null;
      for (const res of hung) res.destroy();
      if (previous === 'refuse') await listen(port);
    },
    failRequests: (opts) => faults.failRequests(opts),
    stopFailingRequests: () => faults.stopFailingRequests(),
    rejectItems: (opts) => faults.rejectItems(opts),
    stopRejectingItems: () => faults.stopRejectingItems(),
    omitProductHeader(omit = true) {
      faults.productHeader = !omit;
    },
    async resetFaults() {
      await standin.endOutage();
      faults.reset();
    },
  };
  return standin;
}
