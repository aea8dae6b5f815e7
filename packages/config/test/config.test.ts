import t from 'tap';
import { loadConfig, ConfigError } from '../src/index.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.variable);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('embedded defaults run every app with an empty environment', async (t) => {
  const api = loadConfig('api', {});
  t.equal(api.PORT, 3101);
  t.equal(api.INTERNAL_PORT, 3111);
  t.equal(api.REDIS_KEY_PREFIX, 'iot');
  t.equal(api.ELASTICSEARCH_INDEX_PREFIX, 'logstash-http-');
  t.equal(api.OIDC_ENABLED, false);
  t.equal(api.OIDC_CLOCK_SKEW_SECONDS, 30);
  t.equal(api.ROTATION_TIMEOUT_SECONDS, 300);
  t.equal(loadConfig('ingest', {}).PORT, 3121);
  t.equal(loadConfig('worker', {}).PORT, 3131);
  t.equal(loadConfig('ingest', {}).MQTT_CLIENT_ID, 'iotsupport-ingest', 'ingest keeps a stable client id for its persistent session');
  t.not(loadConfig('api', { POD_ID: 'a' }).MQTT_CLIENT_ID, loadConfig('api', { POD_ID: 'b' }).MQTT_CLIENT_ID, 'api pods get distinct MQTT client ids');
});

t.test('values are converted from strings', async (t) => {
  const c = loadConfig('api', { PORT: '4000', OIDC_ENABLED: 'true', OIDC_ISSUER_URL: 'https://idp.example/realms/x', OIDC_AUDIENCE: 'iot', GRACEFUL_SHUTDOWN_TIMEOUT: '2.5' });
  t.equal(c.PORT, 4000);
  t.equal(c.OIDC_ENABLED, true);
  t.equal(c.GRACEFUL_SHUTDOWN_TIMEOUT, 2.5);
});

t.test('a wrong value names the variable', async (t) => {
  t.same(problemsOf(() => loadConfig('api', { PORT: 'eighty' })), ['PORT']);
  t.same(problemsOf(() => loadConfig('api', { REDIS_URL: 'http://x' })), ['REDIS_URL']);
  t.same(problemsOf(() => loadConfig('api', { OIDC_CLOCK_SKEW_SECONDS: '-1' })), ['OIDC_CLOCK_SKEW_SECONDS']);
  t.same(problemsOf(() => loadConfig('api', { NODE_ENV: 'staging' })), ['NODE_ENV']);
  t.same(problemsOf(() => loadConfig('api', { SECRET_KEY: 'short' })), ['SECRET_KEY']);
  const err = (() => { try { loadConfig('api', { INTERNAL_PORT: '70000' }); } catch (e) { return e as Error; } return undefined; })();
  t.match(err?.message, /INTERNAL_PORT/, 'the message an operator reads names the variable');
});

const PRODUCTION_SECRETS = { NODE_ENV: 'production', SSE_CALLBACK_SECRET: 's3cret', SECRET_KEY: '0123456789abcdef0123' };
const OIDC_ON = { OIDC_ENABLED: 'true', OIDC_ISSUER_URL: 'https://idp.example/realms/iot', OIDC_AUDIENCE: 'iotsupport' };

t.test('production requires the secrets', async (t) => {
  t.same(problemsOf(() => loadConfig('worker', { NODE_ENV: 'production' })).sort(), ['SECRET_KEY', 'SSE_CALLBACK_SECRET']);
  t.same(problemsOf(() => loadConfig('api', { ...PRODUCTION_SECRETS, ...OIDC_ON })).sort(), ['IDP_ADMIN_CLIENT_ID', 'IDP_ADMIN_CLIENT_SECRET'], 'OIDC on: the identity provider credentials too');
  const ok = loadConfig('api', { ...PRODUCTION_SECRETS, ...OIDC_ON, IDP_ADMIN_CLIENT_ID: 'iotsupport-admin', IDP_ADMIN_CLIENT_SECRET: 'admin-secret' });
  t.equal(ok.NODE_ENV, 'production');
});

t.test('production api with OIDC off is refused unless unauthenticated access is explicitly allowed', async (t) => {
  t.same(problemsOf(() => loadConfig('api', PRODUCTION_SECRETS)), ['OIDC_ENABLED'], 'every public route would be open');
  t.same(problemsOf(() => loadConfig('api', { ...PRODUCTION_SECRETS, ALLOW_UNAUTHENTICATED_API: 'false' })), ['OIDC_ENABLED']);
  t.equal(loadConfig('api', { ...PRODUCTION_SECRETS, ALLOW_UNAUTHENTICATED_API: 'true' }).OIDC_ENABLED, false, 'explicitly allowed');
  t.equal(loadConfig('worker', PRODUCTION_SECRETS).OIDC_ENABLED, false, 'the worker serves no public route');
  t.equal(loadConfig('api', { NODE_ENV: 'development' }).OIDC_ENABLED, false, 'development stays open');
});

t.test('admin role and roles claim path: Keycloak realm roles by default, a dot path otherwise', async (t) => {
  const defaults = loadConfig('api', OIDC_ON);
  t.equal(defaults.OIDC_ROLES_CLAIM, 'realm_access.roles');
  t.equal(defaults.OIDC_ADMIN_ROLE, undefined);
  const clientRoles = loadConfig('api', { ...OIDC_ON, OIDC_ADMIN_ROLE: 'iot-admin', OIDC_ROLES_CLAIM: 'resource_access.iotsupport-api.roles' });
  t.equal(clientRoles.OIDC_ROLES_CLAIM, 'resource_access.iotsupport-api.roles');
  for (const bad of ['.roles', 'realm_access..roles', 'realm_access.roles.', 'realm access.roles']) {
    t.same(problemsOf(() => loadConfig('api', { ...OIDC_ON, OIDC_ROLES_CLAIM: bad })), ['OIDC_ROLES_CLAIM'], `refused: ${JSON.stringify(bad)}`);
  }
});

t.test('OIDC on requires issuer and audience', async (t) => {
  t.same(problemsOf(() => loadConfig('api', { OIDC_ENABLED: 'true' })).sort(), ['OIDC_AUDIENCE', 'OIDC_ISSUER_URL']);
});

t.test('empty strings count as unset', async (t) => {
  t.equal(loadConfig('api', { ELASTICSEARCH_URL: '' }).ELASTICSEARCH_URL, undefined);
});

t.test('a ROTATION_CRON the job scheduler cannot use stops the start, naming it', async (t) => {
  for (const bad of ['not a cron', '99 99 * * *', '61 * * * *']) {
    t.same(problemsOf(() => loadConfig('worker', { ROTATION_CRON: bad })), ['ROTATION_CRON'], bad);
  }
  t.equal(loadConfig('worker', { ROTATION_CRON: '30 3 * * 1-5' }).ROTATION_CRON, '30 3 * * 1-5');
  t.equal(loadConfig('worker', { ROTATION_CRON: '*/10 * * * * *' }).ROTATION_CRON, '*/10 * * * * *', 'seconds field, as BullMQ accepts');
});

t.test('identity provider: required with OIDC in production, set in pairs, realm issuer', async (t) => {
  const oidcProd = { NODE_ENV: 'production', SSE_CALLBACK_SECRET: 's3cret', SECRET_KEY: '0123456789abcdef0123', OIDC_ENABLED: 'true', OIDC_ISSUER_URL: 'https://idp.example/realms/iot', OIDC_AUDIENCE: 'iot' };
  t.same(problemsOf(() => loadConfig('api', oidcProd)).sort(), ['IDP_ADMIN_CLIENT_ID', 'IDP_ADMIN_CLIENT_SECRET']);
  const ok = loadConfig('api', { ...oidcProd, IDP_ADMIN_CLIENT_ID: 'iotsupport-admin', IDP_ADMIN_CLIENT_SECRET: 'x' });
  t.equal(ok.IDP_REQUEST_TIMEOUT_MS, 5000);
  t.equal(ok.IDP_SYNC_INTERVAL_SECONDS, 5);
  t.same(problemsOf(() => loadConfig('api', { IDP_ADMIN_CLIENT_ID: 'a' })), ['IDP_ADMIN_CLIENT_ID'], 'id without secret');
  t.same(
    problemsOf(() => loadConfig('api', { ...oidcProd, OIDC_ISSUER_URL: 'https://idp.example/oauth', IDP_ADMIN_CLIENT_ID: 'a', IDP_ADMIN_CLIENT_SECRET: 'b' })),
    ['OIDC_ISSUER_URL'],
    'the admin API is derived from a realm issuer',
  );
  t.equal(loadConfig('api', { OIDC_ENABLED: 'true', OIDC_ISSUER_URL: 'https://idp.example/realms/iot', OIDC_AUDIENCE: 'iot' }).IDP_ADMIN_CLIENT_ID, undefined, 'optional outside production');
});
