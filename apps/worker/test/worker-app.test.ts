import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { Job } from 'bullmq';
import { loadConfig } from '@iotsupport/config';
import { createDb, migrateToLatest } from '@iotsupport/db';
import { createLogger, createMetrics, Lifecycle } from '@iotsupport/observability';
import { createTestDatabase, deleteRedisPrefix, eventually, LOCAL_REDIS_URL, uniqueRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';
import { startWorkerApp } from '../src/worker-app.js';

async function setup(t: Test) {
  const database = await createTestDatabase();
  const db = createDb(database.url, { max: 2 });
  await migrateToLatest(db.db);
  await db.close();
  const prefix = uniqueRedisPrefix();
  const redis = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
    await database.drop();
  });
  const config = loadConfig('worker', {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    REDIS_KEY_PREFIX: prefix,
    MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
    ROTATION_CRON: '* * * * * *',
    ROTATION_TICK_SECONDS: '1',
    GRACEFUL_SHUTDOWN_TIMEOUT: '10',
  });
  return { config };
}

function appDeps(config: ReturnType<typeof loadConfig>, nudge: () => Promise<void>, onRun?: (job: Job, result: string) => void) {
  const logger = createLogger({ level: 'silent', app: 'worker', podId: config.POD_ID });
  const metrics = createMetrics('worker');
  const lifecycle = new Lifecycle(logger, metrics.shuttingDown, config.GRACEFUL_SHUTDOWN_TIMEOUT);
  return { config, logger, metrics, lifecycle, createNudger: () => ({ nudge }), onRun };
}

t.test('the worker reports job runs on /metrics and is ready once Redis, PostgreSQL and MQTT are up', async (t) => {
  const { config } = await setup(t);
  const deps = appDeps(config, async () => {});
  const app = await startWorkerApp(deps);
  t.teardown(() => deps.lifecycle.shutdown('test'));

  await eventually(async () => (await app.internalServer.inject({ url: '/health/readyz' })).statusCode === 200, 10_000);
  await eventually(async () => /iot_rotation_job_runs_total\{result="success",app="worker"\} [1-9]/.test((await app.internalServer.inject({ url: '/metrics' })).body), 15_000);
  const metrics = (await app.internalServer.inject({ url: '/metrics' })).body;
  t.match(metrics, /iot_rotation_devices\{state="OK",app="worker"\} 0/, 'fleet state gauge read from PostgreSQL');
  t.match(metrics, /iot_rotation_scheduler_repairs_total\{scheduler="rotation-tick",reason="missing",app="worker"\} 1/, 'the first worker created the schedulers');
});

t.test('SIGTERM: the running job finishes, no new job starts, exit code 0', async (t) => {
  const { config } = await setup(t);
  let release!: () => void;
  const jobMayFinish = new Promise<void>((r) => (release = r));
  let inJob = false;
  const runs: string[] = [];
  // Fleet jobs nudge every time; hold the first one inside its run until shutdown has begun.
  const deps = appDeps(
    config,
    async () => {
      inJob = true;
      await jobMayFinish;
    },
    (job, result) => runs.push(`${job.name}:${result}`),
  );
  await startWorkerApp(deps);
  await eventually(() => inJob, 15_000);
  const before = runs.length;

  let exited = false;
  const exit = deps.lifecycle.shutdown('SIGTERM').finally(() => (exited = true));
  // Give a shutdown that did not wait for the job every chance to finish first.
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(exited, 'shutdown waits for the job in progress');
  t.same(runs.slice(before), [], 'the job is still running while shutdown waits for it');
  release();
  t.equal(await exit, 0, 'clean exit');
  t.same(runs.slice(before), ['fleet:success'], 'the job in progress completed; no other job was started');
});
