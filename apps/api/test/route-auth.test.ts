import t from 'tap';
import type { Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { startOidcIssuer } from '@iotsupport/testkit';
import { buildOidcTestApi, buildTestApi, createTestPod, oidcEnv } from './helpers.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Rule = 'public' | 'user' | 'admin' | 'device';

const DOCS_TABLE = fileURLToPath(new URL('../../../../docs/api-auth.md', import.meta.url));

/** `METHOD path` → rule, from the routes table of docs/api-auth.md. */
async function documentedRules(): Promise<Map<string, Rule>> {
  const rows = new Map<string, Rule>();
  for (const line of (await readFile(DOCS_TABLE, 'utf8')).split('\n')) {
    const m = /^\| (GET|POST|PUT|DELETE) \| (\/\S*) \| (public|user|admin|device) \|$/.exec(line);
    if (m) rows.set(`${m[1]} ${m[2]}`, m[3] as Rule);
  }
  return rows;
}

/** Every route a pod registers when it starts, as `METHOD path` → its `config.auth` (HEAD folded into GET). */
async function routeTable(pod: { publicServer: FastifyInstance; start(): Promise<void> }): Promise<Map<string, unknown>> {
  const routes: RouteOptions[] = [];
  pod.publicServer.addHook('onRoute', (route) => {
    routes.push(route);
  });
  await pod.start();
  const table = new Map<string, unknown>();
  for (const route of routes) {
    for (const method of [route.method].flat()) table.set(`${method === 'HEAD' ? 'GET' : method} ${route.url}`, route.config?.auth);
  }
  return table;
}

async function withOidc(t: Test, extra: Record<string, string> = {}) {
  const { issuer, publicServer } = await buildOidcTestApi(t, extra);
  return { issuer, app: publicServer };
}

async function call(app: FastifyInstance, method: string, url: string, headers: Record<string, string> = {}, payload?: unknown) {
  const res = await app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload: payload as Json }) });
  return { status: res.statusCode, body: (res.body && res.headers['content-type']?.toString().startsWith('application/json') ? res.json() : res.body) as Json };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** A concrete URL for a route path (`:id` → an id that exists or not, `*` → a file). */
const concrete = (path: string, id: number) => path.replace(':id', String(id)).replace('*', 'index.css');

t.test('every route of the running app has an auth rule, and it is the one docs/api-auth.md lists', async (t) => {
  const issuer = await startOidcIssuer();
  t.teardown(() => issuer.close());
  const actual = await routeTable(await createTestPod(t, oidcEnv(issuer)));
  const documented = await documentedRules();
  t.ok(documented.size >= 20, 'the docs table was read');
  t.same([...actual.entries()].filter(([, rule]) => !['public', 'user', 'admin', 'device'].includes(rule as string)), [], 'no route without a rule');
  t.same(Object.fromEntries([...actual.entries()].sort()), Object.fromEntries([...documented.entries()].sort()), 'the app and the docs table agree, route by route');
});

t.test('a route registered without an auth rule stops the public listener from starting', async (t) => {
  const { publicServer } = await createTestPod(t);
  publicServer.get('/api/forgotten', async () => ({ secret: true }));
  await t.rejects(async () => publicServer.ready(), /public routes without an auth rule .*GET \/api\/forgotten/);
});

t.test('OIDC on: no token 401, bad token 401, user without the admin role 403 on admin routes, a device token 403 on user routes', async (t) => {
  const { issuer, app } = await withOidc(t, { OIDC_ADMIN_ROLE: 'iot-admin' });
  const documented = await documentedRules();
  const user = bearer(issuer.token({ sub: 'alice', extra: { realm_access: { roles: ['offline_access'] } } }));
  const device = bearer(issuer.token({ sub: 'service-account-iotdevice-thermo-x-key00000', azp: 'iotdevice-thermo-x-key00000' }));

  for (const [route, rule] of documented) {
    const [method, path] = route.split(' ') as [string, string];
    const url = concrete(path, 1);
    const anonymous = await call(app, method, url, { 'content-type': 'application/json' }, method === 'GET' || method === 'DELETE' ? undefined : { anything: 1 });
    if (rule === 'public') {
      t.ok(anonymous.status < 400 || anonymous.status === 404, `${route}: public, no token needed (${anonymous.status})`);
      continue;
    }
    t.match(anonymous, { status: 401, body: { code: 'UNAUTHORIZED' } }, `${route}: no token → 401 whatever the body`);
    t.match(await call(app, method, url, bearer(issuer.expiredToken())), { status: 401, body: { code: 'INVALID_TOKEN' } }, `${route}: expired token`);
    t.match(await call(app, method, url, bearer(issuer.forgedSignatureToken())), { status: 401, body: { code: 'INVALID_TOKEN' } }, `${route}: forged token`);
    const asUser = await call(app, method, url, user);
    const asDevice = await call(app, method, url, device);
    if (rule === 'admin') t.match(asUser, { status: 403, body: { code: 'ADMIN_ROLE_REQUIRED' } }, `${route}: a user without the role`);
    if (rule === 'user') t.notOk([401, 403].includes(asUser.status), `${route}: any user passes (${asUser.status})`);
    if (rule === 'device') t.match(asUser, { status: 401, body: { code: 'INVALID_DEVICE_CREDENTIALS' } }, `${route}: a user token is no device`);
    if (rule !== 'device') t.match(asDevice, { status: 403, body: { code: 'USER_TOKEN_REQUIRED' } }, `${route}: a device token`);
  }
});

/** The admin journey of today, end to end, with `admin` headers. */
async function adminJourney(t: Test, app: FastifyInstance, admin: Record<string, string>) {
  const model = await call(app, 'POST', '/api/device-models', admin, { code: 'thermo', name: 'Thermo' });
  t.equal(model.status, 201, 'model created');
  const device = await call(app, 'POST', '/api/devices', admin, { key: 'abcd1234', device_model_id: model.body.id });
  t.equal(device.status, 201, 'device created');
  t.equal((await call(app, 'PUT', `/api/devices/${device.body.id}`, admin, { active: true })).status, 200, 'device updated');
  t.same((await call(app, 'POST', `/api/devices/${device.body.id}/rotate`, admin)).body, { status: 'queued' }, 'rotation queued');
  t.equal((await call(app, 'POST', '/api/rotation/trigger', admin)).status, 200, 'fleet trigger');
  t.equal((await call(app, 'GET', '/api/rotation/status', admin)).status, 200, 'status');
  t.equal((await call(app, 'DELETE', `/api/devices/${device.body.id}`, admin)).status, 204, 'device deleted');
}

t.test('OIDC on: the admin role at the default Keycloak realm-roles claim works as today', async (t) => {
  const { issuer, app } = await withOidc(t, { OIDC_ADMIN_ROLE: 'iot-admin' });
  await adminJourney(t, app, bearer(issuer.token({ sub: 'root', extra: { realm_access: { roles: ['offline_access', 'iot-admin'] } } })));
  const cookie = { cookie: `access_token=${issuer.token({ sub: 'root', extra: { realm_access: { roles: ['iot-admin'] } } })}` };
  t.equal((await call(app, 'POST', '/api/device-models', cookie, { code: 'other', name: 'Other' })).status, 201, 'the cookie carries the token as well');
  const wrongPlace = bearer(issuer.token({ sub: 'root', extra: { resource_access: { api: { roles: ['iot-admin'] } } } }));
  t.match(await call(app, 'POST', '/api/rotation/trigger', wrongPlace), { status: 403, body: { code: 'ADMIN_ROLE_REQUIRED' } }, 'the role elsewhere in the token does not count');
});

t.test('OIDC on: a client-roles claim path is read where configured', async (t) => {
  const { issuer, app } = await withOidc(t, { OIDC_ADMIN_ROLE: 'admin', OIDC_ROLES_CLAIM: 'resource_access.iotsupport-api.roles' });
  await adminJourney(t, app, bearer(issuer.token({ sub: 'root', extra: { resource_access: { 'iotsupport-api': { roles: ['admin'] } } } })));
  const realmRole = bearer(issuer.token({ sub: 'root', extra: { realm_access: { roles: ['admin'] } } }));
  t.match(await call(app, 'POST', '/api/rotation/trigger', realmRole), { status: 403, body: { code: 'ADMIN_ROLE_REQUIRED' } }, 'a realm role of that name is not the client role');
});

t.test('OIDC on without OIDC_ADMIN_ROLE: any user may use the admin routes', async (t) => {
  const { issuer, app } = await withOidc(t);
  await adminJourney(t, app, bearer(issuer.token({ sub: 'bob' })));
});

t.test('OIDC on: an issuer whose keys cannot be fetched is 503, not 401 (the token may be valid)', async (t) => {
  const { issuer, app } = await withOidc(t);
  const token = issuer.token({ sub: 'bob' });
  await issuer.close();
  t.match(await call(app, 'GET', '/api/devices', bearer(token)), { status: 503, body: { code: 'SERVICE_UNAVAILABLE' } });
});

t.test('the OpenAPI document is public and declares its security schemes and each operation\'s', async (t) => {
  const { app } = await withOidc(t, { OIDC_ADMIN_ROLE: 'iot-admin' });
  const doc = await call(app, 'GET', '/api/docs/json');
  t.equal(doc.status, 200, 'readable without a token');
  t.match(doc.body.components.securitySchemes, {
    bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
    cookieAuth: { type: 'apiKey', in: 'cookie', name: 'access_token' },
  });
  t.same(doc.body.paths['/api/devices/{id}'].put.security, [{ bearerAuth: [] }, { cookieAuth: [] }]);
  t.same(doc.body.paths['/api/iot/config'].get.security, [{ bearerAuth: [] }]);
  t.match(Object.keys(doc.body.paths['/api/devices'].post.responses), ['201', '400', '401', '403'], 'auth answers documented');
  t.equal((await call(app, 'GET', '/api/docs/')).status, 200, 'the UI too');
});

t.test('OIDC off: every route is open (development)', async (t) => {
  const { publicServer: app } = await buildTestApi(t);
  await adminJourney(t, app, {});
  t.equal((await call(app, 'GET', '/api/devices')).status, 200);
  t.equal((await call(app, 'GET', '/api/devices', bearer('not-even-a-jwt'))).status, 200, 'a token is not even looked at');
});
