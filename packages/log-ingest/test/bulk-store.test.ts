import t from 'tap';
import { BulkRequestError, BulkStore, StoreAborted, backoffDelayMs, type BulkApi, type CreateOp, type ItemResult, type LogLine } from '../src/index.js';
import { metricValue } from '@iotsupport/testkit';
import { freshMetrics, silentLogger } from './helpers.js';

/**
 * A scripted `_bulk` endpoint: keeps what was created (by index/_id, `create` semantics: a
 * second create of an id answers 409) and lets each test decide per item what to answer first.
 */
class ScriptedElasticsearch implements BulkApi {
  readonly stored = new Map<string, unknown>();
  readonly requests: CreateOp[][] = [];
  /** Per request, in order: a whole-request failure, or a per-item override (undefined = normal). */
  script: Array<BulkRequestError | ((op: CreateOp) => ItemResult | undefined)> = [];

  async bulkCreate(ops: readonly CreateOp[]): Promise<ItemResult[]> {
    this.requests.push([...ops]);
    const step = this.script.shift();
    if (step instanceof BulkRequestError) throw step;
    return ops.map((op) => {
      const override = step?.(op);
      if (override) return override;
      const key = `${op.index}/${op.id}`;
      if (this.stored.has(key)) return { status: 409, errorType: 'version_conflict_engine_exception' };
      this.stored.set(key, op.doc);
      return { status: 201 };
    });
  }
  async ping() {
    return true;
  }
  async close() {}
}

function lines(n: number, index = 'logs-2026.01.01'): LogLine[] {
  return Array.from({ length: n }, (_, i) => ({ id: `id-${i}`, index, doc: { message: `m${i}` }, json: JSON.stringify({ message: `m${i}` }), entityId: undefined }));
}

function setup(es: ScriptedElasticsearch, signal = new AbortController().signal) {
  const { registry, metrics } = freshMetrics();
  const store = new BulkStore(es, { deadLetterIndex: 'dead', backoff: { baseMs: 1, capMs: 5 }, signal }, metrics, silentLogger);
  return { store, registry };
}

t.test('a clean batch is one request and every line is stored once', async (t) => {
  const es = new ScriptedElasticsearch();
  const { store, registry } = setup(es);
  await store.store(lines(5));
  t.equal(es.requests.length, 1);
  t.equal(es.stored.size, 5);
  t.equal(await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'success', error_type: 'none' }), 1);
});

t.test('per-item 429 and 503: only those items are sent again, with the same ids', async (t) => {
  const es = new ScriptedElasticsearch();
  es.script = [(op) => (op.id === 'id-1' ? { status: 429, errorType: 'es_rejected_execution_exception' } : op.id === 'id-3' ? { status: 503, errorType: 'unavailable_shards_exception' } : undefined)];
  const { store, registry } = setup(es);
  await store.store(lines(5));
  t.equal(es.requests.length, 2);
  t.same(
    es.requests[1]!.map((op) => op.id),
    ['id-1', 'id-3'],
  );
  t.equal(es.stored.size, 5);
  t.equal(await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'partial', error_type: 'item_retryable' }), 1);
  t.match(await registry.metrics(), /iot_logsink_retry_delay_seconds_count\{target="elasticsearch"\} 1\n/, 'one backoff waited');
});

t.test('an item stored by an earlier attempt answers 409 and counts as stored', async (t) => {
  const es = new ScriptedElasticsearch();
  // The first request is applied by Elasticsearch but its answer is lost (timeout): the retry meets 409s.
  es.script = [
    (op) => {
      es.stored.set(`${op.index}/${op.id}`, op.doc);
      return undefined;
    },
  ];
  const original = es.bulkCreate.bind(es);
  let calls = 0;
  es.bulkCreate = async (ops) => {
    const r = await original(ops);
    if (++calls === 1) throw new BulkRequestError('timeout', new Error('socket timeout'));
    return r;
  };
  const { store } = setup(es);
  await store.store(lines(3));
  t.equal(calls, 2);
  t.equal(es.stored.size, 3, 'nothing stored twice');
});

t.test('whole-request failures (down, 503, 429) are retried until accepted', async (t) => {
  const es = new ScriptedElasticsearch();
  es.script = [new BulkRequestError('connection', new Error('ECONNREFUSED')), new BulkRequestError('http_5xx', new Error('503')), new BulkRequestError('http_429', new Error('429'))];
  const { store, registry } = setup(es);
  await store.store(lines(4));
  t.equal(es.requests.length, 4);
  t.equal(es.stored.size, 4);
  for (const error_type of ['connection', 'http_5xx', 'http_429']) {
    t.equal(await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'failed', error_type }), 1, error_type);
  }
});

t.test('a permanent item error goes to the dead-letter index with the reason and the original document', async (t) => {
  const es = new ScriptedElasticsearch();
  es.script = [(op) => (op.id === 'id-2' ? { status: 400, errorType: 'mapper_parsing_exception', errorReason: 'failed to parse field [level]' } : undefined)];
  const { store, registry } = setup(es);
  const batch = lines(3);
  await store.store(batch);
  t.same(
    batch.map((l) => l.deadLettered === true),
    [false, false, true],
    'the refused line is marked (so it is not streamed)',
  );
  t.equal(es.stored.size, 3);
  t.notOk(es.stored.has('logs-2026.01.01/id-2'));
  const dead = es.stored.get('dead/id-2') as Record<string, unknown>;
  t.match(dead, { failed_index: 'logs-2026.01.01', failed_id: 'id-2', status: 400, error_type: 'mapper_parsing_exception', error_reason: 'failed to parse field [level]' });
  t.same(JSON.parse(dead.source as string), { message: 'm2' });
  t.equal(await metricValue(registry, 'iot_logsink_dead_lettered_lines_total', { reason: 'mapper_parsing_exception' }), 1);
  t.equal(await metricValue(registry, 'iot_logsink_es_writes_total', { status: 'partial', error_type: 'item_rejected' }), 1);
});

t.test('a line the dead-letter index refuses too is counted and given up, not retried forever', async (t) => {
  const es = new ScriptedElasticsearch();
  const refuse = (op: CreateOp) => (op.id === 'id-0' ? { status: 400, errorType: 'strict_dynamic_mapping_exception' } : undefined);
  es.script = [refuse, refuse];
  const { store, registry } = setup(es);
  await store.store(lines(2));
  t.equal(es.requests.length, 2);
  t.equal(await metricValue(registry, 'iot_logsink_dead_letter_failures_total'), 1);
  t.ok(es.stored.has('logs-2026.01.01/id-1'));
});

t.test('an abort ends the retries with StoreAborted', async (t) => {
  const es = new ScriptedElasticsearch();
  es.bulkCreate = async () => {
    throw new BulkRequestError('connection', new Error('down'));
  };
  const ac = new AbortController();
  const { store } = setup(es, ac.signal);
  setTimeout(() => ac.abort(), 50);
  await t.rejects(store.store(lines(1)), StoreAborted);
});

t.test('backoff: full jitter below min(cap, base * 2^attempt)', async (t) => {
  const policy = { baseMs: 100, capMs: 30_000 };
  t.equal(backoffDelayMs(0, policy, () => 0.999999), 99);
  t.equal(backoffDelayMs(3, policy, () => 0.5), 400);
  t.equal(backoffDelayMs(20, policy, () => 0.999999), 29_999, 'capped');
  t.equal(backoffDelayMs(1000, policy, () => 0.5), 15_000, 'huge attempt counts stay finite');
  t.equal(backoffDelayMs(5, policy, () => 0), 0, 'full jitter reaches zero');
});
