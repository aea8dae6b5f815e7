import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import { buildTestApi } from './helpers.js';

const INTERNAL_ONLY: Array<['GET' | 'POST', string]> = [
  ['GET', '/health/healthz'],
  ['GET', '/health/readyz'],
  ['GET', '/metrics'],
  ['POST', '/api/sse/callback?secret=x'],
  ['POST', '/internal/rotation-nudge'],
];

t.test('internal routes are 404 on the public listener', async (t) => {
  const { publicServer, internalServer } = await buildTestApi(t);
  for (const [method, url] of INTERNAL_ONLY) {
    const res = await publicServer.inject({ method, url, payload: method === 'POST' ? {} : undefined });
    t.equal(res.statusCode, 404, `${method} ${url} is not on the public listener`);
    t.same(res.json(), { error: 'Route not found', code: 'NOT_FOUND' });
  }
  t.equal((await internalServer.inject('/health/healthz')).statusCode, 200);
  const metrics = await internalServer.inject('/metrics');
  t.equal(metrics.statusCode, 200);
  t.match(metrics.body, /application_shutting_down\{app="api"\} 0/);
  t.equal((await internalServer.inject('/api/devices')).statusCode, 404, 'and the public API is not on the internal one');
});

t.test('a malformed URL (fastify rejects it before routing) gets the registry body on both listeners', async (t) => {
  const { publicServer, internalServer } = await buildTestApi(t);
  for (const [server, url] of [[publicServer, '/api/devices/%E0%A4%A'], [internalServer, '/health/%E0%A4%A']] as const) {
    const res = await server.inject(url);
    t.equal(res.statusCode, 400, url);
    t.equal(res.json().code, 'VALIDATION_FAILED', 'a code of our registry, not fastify\'s FST_ERR_BAD_URL');
  }
});

t.test('readiness: 200 once Redis, PostgreSQL and MQTT are reachable and the pod holds its ownership lease', async (t) => {
  const { internalServer } = await buildTestApi(t);
  const res = (await eventually(async () => {
    const r = await internalServer.inject('/health/readyz');
    return r.statusCode === 200 ? r : undefined;
  }))!;
  t.same(res.json(), { status: 'ready', checks: { redis: true, postgres: true, mqtt: true, ownership_lease: true, accepting_work: true } });
});

t.test('readiness: 503 naming the dependency that is unreachable', async (t) => {
  // Nothing listens on port 1: the broker is "down" for this api.
  const { internalServer } = await buildTestApi(t, { MQTT_URL: 'mqtt://127.0.0.1:1' });
  const res = (await eventually(async () => {
    const r = await internalServer.inject('/health/readyz');
    return r.json().checks.redis && r.json().checks.postgres ? r : undefined;
  }))!;
  t.equal(res.statusCode, 503);
  t.match(res.json(), { status: 'not_ready', checks: { mqtt: false, redis: true, postgres: true } });
});

t.test('OpenAPI documents the public routes only', async (t) => {
  const { publicServer } = await buildTestApi(t);
  const res = await publicServer.inject('/api/docs/json');
  t.equal(res.statusCode, 200);
  const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
  t.match(doc.openapi, /^3\./);
  t.same(Object.keys(doc.paths['/api/devices'] ?? {}).sort(), ['get', 'post']);
  t.same(Object.keys(doc.paths['/api/devices/{id}'] ?? {}).sort(), ['delete', 'get', 'put']);
  t.same(Object.keys(doc.paths['/api/device-models'] ?? {}).sort(), ['get', 'post']);
  t.notOk(Object.keys(doc.paths).some((p) => p.startsWith('/health') || p.startsWith('/internal') || p === '/metrics'), 'no internal route in the public docs');
  const ui = await publicServer.inject('/api/docs/');
  t.equal(ui.statusCode, 200);
  t.match(ui.headers['content-type'], /text\/html/);
});
