import t from 'tap';
import type { Test } from 'tap';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { ERRORS, type ErrorCode } from '@iotsupport/contracts';
import { buildOidcTestApi } from './helpers.js';

/**
 * Bad input on every public route (OIDC on, real PostgreSQL): the inputs of issue #12 one by one,
 * then generated requests. Never a 5xx; every error is `{error, code}` with the registry's status.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS' | 'QUERY' | 'HEAD';
interface Request {
  method: Method;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

const ADMIN_ROLE = 'iot-admin';

async function setUp(t: Test) {
  const { publicServer: app, issuer } = await buildOidcTestApi(t, { OIDC_ADMIN_ROLE: ADMIN_ROLE });
  const admin = { authorization: `Bearer ${issuer.token({ sub: 'root', extra: { realm_access: { roles: [ADMIN_ROLE] } } })}` };
  const model = (await app.inject({ method: 'POST', url: '/api/device-models', headers: admin, payload: { code: 'thermo', name: 'Thermo' } })).json() as Json;
  const device = (await app.inject({ method: 'POST', url: '/api/devices', headers: admin, payload: { key: 'abcd1234', device_model_id: model.id } })).json() as Json;
  return { issuer, app, admin, model, device };
}

async function send(app: FastifyInstance, req: Request) {
  const res = await app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, ...(req.payload === undefined ? {} : { payload: req.payload }) });
  let body: Json | undefined;
  try {
    body = res.body ? (JSON.parse(res.body) as Json) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, body, raw: res.body };
}

/** An error answer as the contract says: `{error, code}`, the code in the registry, with the registry's status. */
function isRegistryError(status: number, body: Json | undefined): boolean {
  if (!body || typeof body.error !== 'string' || typeof body.code !== 'string') return false;
  const entry = ERRORS[body.code as ErrorCode] as { status: number } | undefined;
  return entry?.status === status;
}

const json = (headers: Record<string, string>) => ({ ...headers, 'content-type': 'application/json' });
const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const nested = (levels: number): unknown => (levels === 1 ? {} : { n: nested(levels - 1) });

t.test('the inputs of issue #12: typed 400s before any I/O, nothing written', async (t) => {
  const { app, admin, model, device } = await setUp(t);
  const expect = async (label: string, req: Request, status: number, code: string) => {
    const res = await send(app, req);
    t.equal(res.status, status, `${label}: ${res.raw.slice(0, 120)}`);
    t.equal(res.body?.code, code, `${label}: code`);
  };
  const deviceBody = (config: string, key = 'new00001') => `{"key":"${key}","device_model_id":${model.id},"config":${config}}`;

  for (const [label, config] of [
    ['\\u0000 in a value', '{"a":"x\\u0000y"}'],
    ['\\u0000 in a key', '{"a\\u0000":1}'],
    ['lone high surrogate', '{"a":"\\ud800"}'],
    ['lone low surrogate in a nested key', '{"a":[{"\\udc00":1}]}'],
    ['5000 levels of arrays', `{"a":${deep(5000)}}`],
    ['33 levels', JSON.stringify(nested(33))],
  ] as const) {
    await expect(`POST /api/devices, ${label}`, { method: 'POST', url: '/api/devices', headers: json(admin), payload: deviceBody(config) }, 400, 'VALIDATION_FAILED');
    await expect(`PUT /api/devices/:id, ${label}`, { method: 'PUT', url: `/api/devices/${device.id}`, headers: json(admin), payload: `{"config":${config}}` }, 400, 'VALIDATION_FAILED');
  }
  const atLimit = await send(app, { method: 'POST', url: '/api/devices', headers: json(admin), payload: deviceBody(JSON.stringify(nested(32)), 'deep0032') });
  t.equal(atLimit.status, 201, '32 levels are stored');
  const emoji = await send(app, { method: 'PUT', url: `/api/devices/${device.id}`, headers: json(admin), payload: '{"config":{"deviceName":"\\ud83d\\ude00 hall"}}' });
  t.equal(emoji.body?.device_name, '😀 hall', 'a surrogate pair is a character like any other');
  await expect('config of 70 KB', { method: 'POST', url: '/api/devices', headers: json(admin), payload: deviceBody(JSON.stringify({ a: 'x'.repeat(70_000) })) }, 413, 'PAYLOAD_TOO_LARGE');

  await expect('model name with \\u0000', { method: 'POST', url: '/api/device-models', headers: json(admin), payload: '{"code":"m1","name":"a\\u0000"}' }, 400, 'VALIDATION_FAILED');
  await expect('model name with a lone surrogate', { method: 'POST', url: '/api/device-models', headers: json(admin), payload: '{"code":"m1","name":"\\udfff"}' }, 400, 'VALIDATION_FAILED');

  for (const id of ['1.5', '01', '+1', '1e3', '0x1', '-1', '0', '2147483648', '99999999999999999999', '%20' + String(device.id)]) {
    for (const [method, suffix] of [['GET', ''], ['PUT', ''], ['DELETE', ''], ['POST', '/rotate']] as const) {
      await expect(`${method} /api/devices/${id}${suffix}`, { method, url: `/api/devices/${id}${suffix}`, headers: method === 'PUT' ? json(admin) : admin, ...(method === 'PUT' ? { payload: '{"active":true}' } : {}) }, 400, 'VALIDATION_FAILED');
    }
  }
  await expect('largest int4 id', { method: 'GET', url: '/api/devices/2147483647', headers: admin }, 404, 'DEVICE_NOT_FOUND');
  t.equal((await send(app, { method: 'GET', url: `/api/devices/${device.id}`, headers: admin })).status, 200, 'a canonical id is found');

  await expect('/api/docs/static/%00', { method: 'GET', url: '/api/docs/static/%00', headers: {} }, 400, 'BAD_REQUEST');
  await expect('/api/docs/static/..%5c', { method: 'GET', url: '/api/docs/static/..%5c..%5cpackage.json', headers: {} }, 403, 'FORBIDDEN');
  await expect('QUERY without content type', { method: 'QUERY', url: '/api/devices', headers: admin }, 400, 'BAD_REQUEST');

  const keys = ((await send(app, { method: 'GET', url: '/api/devices', headers: admin })).body as unknown as Json[]).map((d) => d.key).sort();
  t.same(keys, ['abcd1234', 'deep0032'], 'no refused request wrote anything');
  t.same((await send(app, { method: 'GET', url: '/api/device-models', headers: admin })).body, [model], 'no model either');
});

/** Strings PostgreSQL cannot store, path tricks, numbers at the edges, and anything at all. */
const nastyString = fc.oneof(
  fc.constantFrom('\u0000', 'a\u0000', '\ud800', '\udfff', 'x\ud83d', '😀', '%00', '..%5c', '../', '{"a":', '', ' ', 'null', '1.5', '99999999999999999999'),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 300 }),
);
const idNumber = fc.oneof(fc.constantFrom(0, -1, 1, 2, 1.5, 2147483647, 2147483648, 1e20, Number.MAX_SAFE_INTEGER), fc.integer(), fc.double());
/** Percent-encoded UTF-8 (a lone surrogate has no UTF-8 form: it becomes U+FFFD, as in any client). */
const urlEncode = (s: string) => encodeURIComponent(Buffer.from(s, 'utf8').toString('utf8'));
/** Raw escapes no encoder produces: NUL, a UTF-8-encoded surrogate, an overlong slash, a stray byte, traversal. */
const rawEscapes = fc.constantFrom('%00', '%ED%A0%80', '%C0%AF', '%FF', '..%5c', '%2e%2e', '%2F');
const idText = fc.oneof(idNumber.map(String), nastyString.map(urlEncode), rawEscapes, fc.constantFrom('1.5', '01'));
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(nastyString, fc.oneof(nastyString, idNumber, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 }),
);
/** JSON text nested `n` levels, built as text (JSON.stringify cannot go this deep). */
const deepText = fc.integer({ min: 30, max: 4000 }).map((n) => `{"config":{"a":${deep(n)}}}`);

/** Per route: bodies shaped like its schema with any values in the fields, any JSON, deep JSON, no body or any text. Built once. */
function bodyArbitraries(modelId: number): (route: string) => fc.Arbitrary<string | undefined> {
  const config = fc.oneof(jsonBody, fc.constant({ deviceName: '\ud800' }), fc.constant({ deviceEntityId: 1 }));
  const subscription = fc.record({ request_id: nastyString, device_id: idNumber }, { requiredKeys: [] });
  const shaped: Record<string, fc.Arbitrary<unknown>> = {
    'POST /api/device-models': fc.record({ code: fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,8}$/), nastyString), name: nastyString }, { requiredKeys: [] }),
    'POST /api/devices': fc.record({ key: fc.oneof(fc.stringMatching(/^[a-z0-9]{8}$/), nastyString), device_model_id: fc.oneof(fc.constant(modelId), idNumber), config, active: fc.boolean() }, { requiredKeys: ['key'] }),
    'PUT /api/devices/:id': fc.record({ device_model_id: fc.oneof(fc.constant(modelId), idNumber), config, active: fc.oneof(fc.boolean(), nastyString) }, { requiredKeys: [] }),
    'POST /api/device-logs/subscribe': subscription,
    'POST /api/device-logs/unsubscribe': subscription,
  };
  const text = (arb: fc.Arbitrary<unknown>) => arb.map((v) => JSON.stringify(v) as string | undefined);
  const others = [
    { weight: 1, arbitrary: text(jsonBody) },
    { weight: 1, arbitrary: deepText.map((v) => v as string | undefined) },
    { weight: 1, arbitrary: fc.oneof(nastyString, fc.constant(undefined)) },
  ];
  const byRoute = new Map(Object.entries(shaped).map(([route, arb]) => [route, fc.oneof({ weight: 4, arbitrary: text(arb) }, ...others)]));
  const fallback = fc.oneof(...others);
  return (route) => byRoute.get(route) ?? fallback;
}

t.test('generated requests to every public route: no 5xx, every answer documented, errors from the registry', async (t) => {
  const { issuer, app, admin, model, device } = await setUp(t);
  const openapi = (await send(app, { method: 'GET', url: '/api/docs/json', headers: {} })).body as Json;
  // every documented operation, as `METHOD /path/:id` with the statuses it documents
  const operations = Object.entries(openapi.paths as Record<string, Record<string, Json>>).flatMap(([path, byMethod]) =>
    Object.entries(byMethod).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path.replace('{id}', ':id')}`, statuses: Object.keys(op.responses ?? {}).map(Number) })),
  );
  t.ok(operations.length >= 15, `${operations.length} operations`);
  const statusesOf = new Map(operations.map((op) => [op.route, op.statuses]));
  /** What any request may get besides its operation's own answers: malformed (400), no such route (404), too large (413), media type (415). */
  const GENERIC = [400, 404, 413, 415];

  const authorization = fc.oneof(
    { weight: 6, arbitrary: fc.constant(admin) },
    fc.constant({ authorization: `Bearer ${issuer.token({ sub: 'alice' })}` }),
    fc.constant({ authorization: `Bearer ${issuer.token({ sub: 'dev', azp: `iotdevice-thermo-${device.key}` })}` }),
    fc.constant({ cookie: `access_token=${issuer.token({ sub: 'root', extra: { realm_access: { roles: [ADMIN_ROLE] } } })}` }),
    fc.constant({} as Record<string, string>),
    nastyString.map((s) => ({ authorization: `Bearer ${urlEncode(s)}` })),
    fc.string({ unit: 'grapheme-ascii', maxLength: 60 }).map((s) => ({ cookie: s })),
  );
  const contentType = fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', ''), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }));
  const query = fc.dictionary(fc.oneof(fc.constant('device_key'), fc.string({ maxLength: 8 })), fc.oneof(nastyString.map(urlEncode), rawEscapes), { maxKeys: 3 }).map((q) => {
    const text = Object.entries(q).map(([k, v]) => `${urlEncode(k)}=${v}`).join('&');
    return text ? `?${text}` : '';
  });
  const bodyFor = bodyArbitraries(model.id);
  const request = fc
    .record({
      operation: fc.constantFrom(...operations),
      // mostly the operation's own method and JSON, sometimes anything
      otherMethod: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom<Method>('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'QUERY') }),
      id: fc.oneof(fc.constant(String(device.id)), idText),
      query,
      auth: authorization,
      contentType: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: contentType }),
    })
    .chain((r) => bodyFor(r.operation.route).map((payload) => ({ ...r, payload })));

  const answers = new Map<string, number>();
  const cpuBefore = process.cpuUsage();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const [method, path] = r.operation.route.split(' ') as [Method, string];
      const req: Request = {
        method: r.otherMethod ?? method,
        url: path.replace(':id', r.id) + r.query,
        headers: { ...r.auth, ...(r.contentType === null ? (r.payload === undefined ? {} : { 'content-type': 'application/json' }) : { 'content-type': r.contentType }) },
        ...(r.payload === undefined || r.otherMethod === 'GET' || (r.otherMethod === null && method === 'GET') ? {} : { payload: r.payload }),
      };
      const res = await send(app, req);
      const key = res.status >= 400 ? `${res.status} ${res.body?.code}` : String(res.status);
      answers.set(key, (answers.get(key) ?? 0) + 1);
      if (res.status >= 500) throw new Error(`${res.status} for ${JSON.stringify(req).slice(0, 300)}: ${res.raw.slice(0, 200)}`);
      const documented = statusesOf.get(`${req.method} ${path}`) ?? [];
      if (!documented.includes(res.status) && !GENERIC.includes(res.status)) throw new Error(`undocumented ${res.status} for ${req.method} ${req.url}: ${res.raw.slice(0, 200)}`);
      if (res.status >= 400 && !isRegistryError(res.status, res.body)) throw new Error(`not a registry error: ${res.status} ${res.raw.slice(0, 200)}`);
    }),
    { numRuns: 400 },
  );
  const cpu = process.cpuUsage(cpuBefore);
  t.comment(`answers: ${JSON.stringify(Object.fromEntries([...answers].sort()))}; cpu ${Math.round((cpu.user + cpu.system) / 1000)} ms`);
  t.equal([...answers.values()].reduce((a, b) => a + b, 0), 400, 'every generated request was answered');
  // The generator reaches every layer, so the property is tested beyond the first check.
  const seen = [...answers.keys()];
  for (const layer of [/^401 /, /^403 /, /^400 VALIDATION_FAILED/, /^2\d\d/, /^404 DEVICE_NOT_FOUND|^404 DEVICE_MODEL_NOT_FOUND/]) {
    t.ok(seen.some((k) => layer.test(k)), `some answers ${layer.source}`);
  }
  t.equal((await send(app, { method: 'GET', url: '/api/rotation/status', headers: admin })).status, 200, 'and the api still serves');
});
