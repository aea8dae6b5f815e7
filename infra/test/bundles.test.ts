import t, { type Test } from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import {
  LOCAL_MQTT_URL,
  LOCAL_REDIS_URL,
  createTestDatabase,
  deleteRedisPrefix,
  eventually,
  listeningUrls,
  metricSample,
  startElasticsearchStandin,
  uniqueId,
  uniqueRedisPrefix,
  uniqueTopicPrefix,
} from '@iotsupport/testkit';
import { metricNamesInExposition, metricNamesInPromQL } from '../src/metric-names.js';
import { alertRules, dashboardQueries } from '../src/monitoring.js';
import { REPO_ROOT, repoPath } from '../src/paths.js';

/**
 * The deployables as the image ships them: infra/image/bundle.sh writes each app to a temporary
 * folder outside the workspace, and each is started there with plain `node` against the local
 * services, as the container would (NODE_ENV=production), until /health/readyz answers 200.
 * The /metrics of the three running bundles then prove every metric the alerts and the dashboard
 * query exists (a typo in either fails here).
 */
const run = promisify(execFile);
const APPS = ['api', 'ingest', 'worker'] as const;

/** Metrics the alerts and dashboard read that Prometheus or kube-state-metrics export, not our code. */
const EXTERNAL_METRICS = new Set(['kube_pod_status_ready']);

const outDir = mkdtempSync(join(tmpdir(), 'iotsupport-bundles-'));
const exposed = new Set<string>();
const prefix = uniqueRedisPrefix();
const redis = new Redis(LOCAL_REDIS_URL, { lazyConnect: true });
const env: Record<string, string> = {
  PATH: process.env.PATH ?? '',
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  REDIS_URL: LOCAL_REDIS_URL,
  REDIS_KEY_PREFIX: prefix,
  MQTT_URL: LOCAL_MQTT_URL,
  MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
  SSE_CALLBACK_SECRET: 'bundle-test-callback-secret',
  SECRET_KEY: 'bundle-test-secret-key-32-characters',
  SHUTDOWN_DRAIN_SECONDS: '0',
  // No issuer here: the api's production rule refuses OIDC off unless this says so.
  ALLOW_UNAUTHENTICATED_API: 'true',
};

t.before(async () => {
  const testDb = await createTestDatabase();
  const es = await startElasticsearchStandin();
  env.DATABASE_URL = testDb.url;
  env.ELASTICSEARCH_URL = es.url;
  t.teardown(async () => {
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
    await testDb.drop();
    await es.stop();
    rmSync(outDir, { recursive: true, force: true });
  });
});

function start(cwd: string, args: string[], extra: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, args, { cwd, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exit = once(child, 'close').then(([code]) => code as number | null);
  return { child, exit, output: () => output };
}

t.test('bundle.sh writes api, ingest and worker with production dependencies only', async (t) => {
  t.notOk(outDir.startsWith(REPO_ROOT), 'bundles are written outside the workspace');
  await run('bash', [repoPath('infra/image/bundle.sh'), outDir, ...APPS], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  for (const app of APPS) {
    const dir = join(outDir, app);
    t.ok(existsSync(join(dir, 'dist/src/main.js')), `${app}: the entry point is there`);
    t.notOk(existsSync(join(dir, 'dist/test')), `${app}: no compiled tests`);
    const ours = readdirSync(join(dir, 'node_modules/.pnpm')).filter((d) => d.startsWith('@iotsupport+'));
    t.ok(ours.length > 0, `${app}: workspace packages are copied in`);
    t.notOk(ours.some((d) => d.includes('testkit')), `${app}: no testkit`);
    const store = readdirSync(join(dir, 'node_modules/.pnpm'));
    t.notOk(store.some((d) => /^(tap|typescript)@|^@tapjs\+/.test(d)), `${app}: no test runner or compiler`);
    for (const pkg of ours) {
      const name = pkg.replace(/^@iotsupport\+([^@]+)@.*$/, '$1');
      t.notOk(existsSync(join(dir, 'node_modules/.pnpm', pkg, 'node_modules/@iotsupport', name, 'dist/test')), `${app}: ${name} without its tests`);
    }
  }
});

t.test("the api bundle migrates the database with the migration Job's command", async (t) => {
  const migrate = start(join(outDir, 'api'), ['node_modules/@iotsupport/db/dist/src/cli.js', 'migrate'], {});
  t.equal(await migrate.exit, 0, migrate.output());
  t.match(migrate.output(), /applied/);
});

async function readyAndMetrics(t: Test, app: string, internalUrl: () => string | undefined, proc: ReturnType<typeof start>) {
  const url = await eventually(internalUrl, 30_000, 50).catch((err: unknown) => {
    throw new Error(`${app} did not start: ${String(err)}\n${proc.output()}`);
  });
  await eventually(async () => (await fetch(`${url}/health/readyz`)).status === 200, 30_000, 100).catch((err: unknown) => {
    throw new Error(`${app} never became ready: ${String(err)}\n${proc.output()}`);
  });
  t.pass(`${app}: /health/readyz answers 200`);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  for (const name of metricNamesInExposition(metrics)) exposed.add(name);
  // The idle figures the manifests' resource requests start from (docs/operations.md).
  const rssMiB = metricSample(metrics, 'process_resident_memory_bytes') / 2 ** 20;
  t.comment(`${app}: ready, idle RSS ${rssMiB.toFixed(0)} MiB, CPU ${metricSample(metrics, 'process_cpu_seconds_total').toFixed(2)} s since start`);
  proc.child.kill('SIGTERM');
  t.equal(await proc.exit, 0, `${app}: SIGTERM drains and exits 0`);
}

for (const app of APPS) {
  t.test(`the ${app} bundle boots from outside the workspace and becomes ready`, async (t) => {
    const proc = start(join(outDir, app), ['dist/src/main.js'], {
      PORT: '0',
      INTERNAL_PORT: '0',
      POD_ID: uniqueId(app),
      ...(app === 'ingest' ? { MQTT_CLIENT_ID: uniqueId('ingest') } : {}),
    });
    t.teardown(() => {
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    });
    const address = () =>
      app === 'api' ? listeningUrls(proc.output()).internal : /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(proc.output())?.[1];
    await readyAndMetrics(t, app, address, proc);
  });
}

t.test('every metric the alerts and the dashboard query is exported by a bundle', async (t) => {
  t.ok(exposed.size > 50, 'the bundles exposed their metrics');
  const queries = [...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })), ...dashboardQueries().map((q) => ({ where: `panel "${q.panel}"`, expr: q.expr }))];
  for (const { where, expr } of queries) {
    const names = metricNamesInPromQL(expr);
    t.ok(names.length > 0, `${where} reads a metric`);
    for (const name of names) t.ok(exposed.has(name) || EXTERNAL_METRICS.has(name), `${where}: ${name} exists`);
  }
});
