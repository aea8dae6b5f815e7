import t, { type Test } from 'tap';
import { Client, errors } from '@elastic/elasticsearch';
import { request } from 'undici';
import { startElasticsearchStandin, type ElasticsearchStandin } from '../src/index.js';

/** A stand-in plus an official client pointed at it, both closed when the test ends. */
async function setup(t: Test, clientOptions: Partial<ConstructorParameters<typeof Client>[0]> = {}): Promise<{ es: ElasticsearchStandin; client: Client }> {
  const es = await startElasticsearchStandin();
  const client = new Client({ node: es.url, ...clientOptions });
  t.teardown(async () => {
    await client.close();
    await es.stop();
  });
  return { es, client };
}

t.test('the official client accepts the stand-in as Elasticsearch (product header, info, media types)', async (t) => {
  const { es, client } = await setup(t);
  const info = await client.info({}, { meta: true });
  t.equal(info.headers['x-elastic-product'], 'Elasticsearch');
  t.match(info.headers['content-type'], /application\/vnd\.elasticsearch\+json;\s*compatible-with=9/);
  t.match(info.body.version.number, /^9\./);
  t.equal(await client.ping(), true, 'HEAD / answers 200');
  t.equal(es.requests()[0]?.headers.accept, 'application/vnd.elasticsearch+json; compatible-with=9,text/plain');
});

t.test('a response without x-elastic-product is refused by the client', async (t) => {
  const { es, client } = await setup(t);
  es.omitProductHeader();
  await t.rejects(client.info(), errors.ProductNotSupportedError);
  await t.rejects(client.bulk({ operations: [{ index: { _index: 'logs-a', _id: '1' } }, { a: 1 }] }), errors.ProductNotSupportedError);
  es.omitProductHeader(false);
  t.ok(await client.info());
});

t.test('bulk stores documents by index and _id, auto ids included, and the client reads them back', async (t) => {
  const { es, client } = await setup(t);
  const result = await client.bulk({
    operations: [
      { index: { _index: 'logs-2026.01.01', _id: 'a' } }, { message: 'first', n: 1 },
      { create: { _index: 'logs-2026.01.01', _id: 'b' } }, { message: 'second', n: 2 },
      { index: { _index: 'logs-2026.01.02' } }, { message: 'auto id', n: 3 },
    ],
  });
  t.equal(result.errors, false);
  t.same(result.items.map((i) => Object.keys(i)[0]), ['index', 'create', 'index'], 'items in request order, keyed by action');
  t.same(result.items.map((i) => Object.values(i)[0]?.status), [201, 201, 201]);
  t.same(result.items.map((i) => Object.values(i)[0]?.result), ['created', 'created', 'created']);
  const autoId = result.items[2]?.index?._id;
  t.match(autoId, /^[A-Za-z0-9_-]{20}$/, 'a generated id looks like Elasticsearch\'s');

  t.same(es.get('logs-2026.01.01', 'a'), { message: 'first', n: 1 });
  t.same(es.get('logs-2026.01.02', autoId!), { message: 'auto id', n: 3 });
  t.equal(es.count('logs-*'), 3);
  t.equal(es.count('logs-2026.01.01'), 2);
  t.same(es.indices(), ['logs-2026.01.01', 'logs-2026.01.02']);
  t.same((await client.get({ index: 'logs-2026.01.01', id: 'b' }))._source, { message: 'second', n: 2 });
  t.equal((await client.count({ index: 'logs-*' })).count, 3);
  t.equal((await client.count({ index: 'logs-*', query: { term: { n: 2 } } })).count, 1);

  const sent = es.bulkRequests()[0]!;
  t.equal(sent.contentType, 'application/vnd.elasticsearch+x-ndjson; compatible-with=9', 'the client sends vendored NDJSON');
  t.equal(sent.body.split('\n').length, 7, 'six NDJSON lines plus the terminating newline');

  const again = await client.index({ index: 'logs-2026.01.01', id: 'a', document: { message: 'replaced' } });
  t.equal(again.result, 'updated');
  t.equal(again._version, 2);
  const missing = await client.get({ index: 'logs-2026.01.01', id: 'missing' }).catch((e: unknown) => e);
  t.equal((missing as errors.ResponseError).statusCode, 404);
  t.equal((missing as errors.ResponseError).body?.found, false);
});

t.test('bulk with the index in the path, gzip-compressed by the client', async (t) => {
  const { es, client } = await setup(t, { compression: true });
  const result = await client.bulk({ index: 'compressed', operations: [{ index: { _id: 'x' } }, { ok: true }] });
  t.equal(result.errors, false);
  t.same(es.get('compressed', 'x'), { ok: true });
  t.equal(es.requests().at(-1)?.headers['content-encoding'], 'gzip');
});

t.test('create of an existing _id fails that item with 409 version_conflict_engine_exception', async (t) => {
  const { es, client } = await setup(t);
  await client.bulk({ operations: [{ create: { _index: 'dup', _id: '1' } }, { v: 'original' }] });
  const result = await client.bulk({
    operations: [{ create: { _index: 'dup', _id: '1' } }, { v: 'retry' }, { create: { _index: 'dup', _id: '2' } }, { v: 'new' }],
  });
  t.equal(result.errors, true);
  const conflict = result.items[0]?.create;
  t.equal(conflict?.status, 409);
  t.equal(conflict?.error?.type, 'version_conflict_engine_exception');
  t.equal(result.items[1]?.create?.status, 201, 'the other item is stored');
  t.same(es.get('dup', '1'), { v: 'original' }, 'the conflict leaves the stored document alone');
});

t.test('per-item 429 for the next N items, per-item 400 by predicate, as the client reports them', async (t) => {
  const { es, client } = await setup(t);
  es.rejectItems({ status: 429, count: 2 });
  es.rejectItems({ status: 400, when: (item) => item.document?.bad === true, type: 'mapping_parser_exception' });
  const ops = [1, 2, 3, 4].flatMap((n) => [{ index: { _index: 'items', _id: String(n) } }, { n, bad: n === 4 }]);
  const result = await client.bulk({ operations: ops });
  t.equal(result.errors, true);
  t.same(result.items.map((i) => i.index?.status), [429, 429, 201, 400]);
  t.equal(result.items[0]?.index?.error?.type, 'es_rejected_execution_exception');
  t.equal(result.items[3]?.index?.error?.type, 'mapping_parser_exception');
  t.same(es.documents('items').map((d) => d.id), ['3'], 'rejected items are not stored');

  const retry = await client.bulk({ operations: ops.slice(0, 4) });
  t.same(retry.items.map((i) => i.index?.status), [201, 201], 'the 429 rule ran out after two items');
  es.stopRejectingItems();
  const after = await client.bulk({ operations: ops.slice(6) });
  t.equal(after.items[0]?.index?.status, 201, 'switched off, the predicate no longer rejects');
});

t.test('the client bulk helper retries 429 items and drops 400 items', async (t) => {
  const { es, client } = await setup(t);
  es.rejectItems({ status: 429, count: 1 });
  es.rejectItems({ status: 400, when: (item) => item.document?.n === 2 });
  const dropped: { status: number; type: string | undefined }[] = [];
  const stats = await client.helpers.bulk({
    datasource: [{ n: 1 }, { n: 2 }, { n: 3 }],
    onDocument: (doc) => ({ create: { _index: 'helper', _id: String(doc.n) } }),
    onDrop: (d) => dropped.push({ status: d.status, type: d.error?.type }),
    wait: 10,
  });
  t.equal(stats.successful, 2);
  t.same(dropped, [{ status: 400, type: 'document_parsing_exception' }]);
  t.same(es.documents('helper').map((d) => d.id).sort(), ['1', '3']);
});

t.test('whole-request 503: the client retries, then reports a ResponseError', async (t) => {
  const { es, client } = await setup(t, { maxRetries: 3 });
  es.failRequests({ count: 2 });
  const ok = await client.bulk({ operations: [{ index: { _index: 'r', _id: '1' } }, { a: 1 }] });
  t.equal(ok.errors, false, 'succeeds on the third attempt');
  t.equal(es.requests().length, 3);

  es.failRequests();
  const err = await client.bulk({ operations: [{ index: { _index: 'r', _id: '2' } }, { a: 2 }] }).catch((e: unknown) => e);
  t.type(err, errors.ResponseError);
  t.equal((err as errors.ResponseError).statusCode, 503);
  t.equal((err as errors.ResponseError).body?.error?.type, 'unavailable_shards_exception');
  t.equal(es.get('r', '2'), undefined);
  es.stopFailingRequests();
  t.equal((await client.bulk({ operations: [{ index: { _index: 'r', _id: '2' } }, { a: 2 }] })).errors, false);
});

for (const mode of ['reset', 'refuse'] as const) {
  t.test(`outage (${mode}): the client sees a connection error, and recovers when it ends`, async (t) => {
    const { es, client } = await setup(t, { maxRetries: 0 });
    await client.info();
    await es.outage(mode);
    await t.rejects(client.bulk({ operations: [{ index: { _index: 'o', _id: '1' } }, { a: 1 }] }), errors.ConnectionError);
    t.equal(es.count(), 0);
    await es.endOutage();
    const fresh = new Client({ node: es.url, maxRetries: 0 });
    t.teardown(() => fresh.close());
    t.equal((await fresh.bulk({ operations: [{ index: { _index: 'o', _id: '1' } }, { a: 1 }] })).errors, false);
  });
}

t.test('outage (hang): the client times out', async (t) => {
  const { es, client } = await setup(t, { maxRetries: 0, requestTimeout: 200 });
  await es.outage('hang');
  await t.rejects(client.info(), errors.TimeoutError);
  await es.endOutage();
});

t.test('malformed NDJSON fails the whole request with 400 like Elasticsearch', async (t) => {
  const { es, client } = await setup(t);
  const raw = (bulkBody: string) => client.transport.request({ method: 'POST', path: '/_bulk', bulkBody }).catch((e: unknown) => e as errors.ResponseError);
  const cases: [string, string][] = [
    ['{not json\n{"a":1}\n', 'x_content_parse_exception'],
    ['{"index":{"_index":"m"}}\n{"a":1}', 'illegal_argument_exception'],
    ['{"explode":{"_index":"m"}}\n{"a":1}\n', 'illegal_argument_exception'],
    ['{"index":{"_index":"m","bogus":1}}\n{"a":1}\n', 'illegal_argument_exception'],
    ['{"index":{}}\n{"a":1}\n', 'action_request_validation_exception'],
    ['\n', 'action_request_validation_exception'],
  ];
  for (const [body, type] of cases) {
    const err = await raw(body);
    t.type(err, errors.ResponseError, JSON.stringify(body));
    t.equal((err as errors.ResponseError).statusCode, 400);
    t.equal((err as errors.ResponseError).body?.error?.type, type, JSON.stringify(body));
  }
  const badSource = (await client.transport.request({ method: 'POST', path: '/_bulk', bulkBody: '{"index":{"_index":"m","_id":"1"}}\n{broken\n' })) as {
    errors: boolean;
    items: { index: { status: number; error: { type: string } } }[];
  };
  t.equal(badSource.errors, true, 'an unparsable source line only fails its item');
  t.equal(badSource.items[0]?.index.status, 400);
  t.equal(badSource.items[0]?.index.error.type, 'document_parsing_exception');
  t.equal(es.count(), 0);
});

t.test('an unsupported Content-Type is refused with 406, and still carries the product header', async (t) => {
  const { es } = await setup(t);
  const res = await request(`${es.url}/_bulk`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"index":{"_index":"x"}}\n{}\n' });
  t.equal(res.statusCode, 406);
  t.equal(res.headers['x-elastic-product'], 'Elasticsearch');
  t.match(await res.body.json(), { status: 406 });
  t.equal(es.count(), 0);
});
