import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createDb, migrateToLatest } from '@iotsupport/db';
import { createTestDatabase, deleteRedisPrefix, eventually, freePort, LOCAL_MQTT_URL, LOCAL_REDIS_URL, uniqueId, uniqueRedisPrefix, uniqueTopicPrefix } from '@iotsupport/testkit';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

/** `node apps/worker/dist/src/main.js` with a test's environment; its output is collected. */
function startWorker(t: Test, env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      HOST: '127.0.0.1',
      MQTT_URL: LOCAL_MQTT_URL,
      MQTT_TOPIC_PREFIX: uniqueTopicPrefix(),
      POD_ID: uniqueId('worker'),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker = {
    child,
    output: '',
    exit: once(child, 'close').then(([code]) => code as number | null),
    /** PORT=0: the listener's address is in the start-up log line. */
    address: () => eventually(() => /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(worker.output)?.[1], 30_000, 50),
  };
  child.stdout.on('data', (d: Buffer) => (worker.output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (worker.output += d.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return worker;
}

t.test('the worker process: ready, schedulers created, job runs on /metrics, SIGTERM exits 0', async (t) => {
  const testDb = await createTestDatabase();
  const handle = createDb(testDb.url);
  await migrateToLatest(handle.db);
  await handle.close();
  const prefix = uniqueRedisPrefix();
  const redis = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
    await testDb.drop();
  });

  const worker = startWorker(t, {
    DATABASE_URL: testDb.url,
    REDIS_URL: LOCAL_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    ROTATION_TICK_SECONDS: '1',
    GRACEFUL_SHUTDOWN_TIMEOUT: '10',
  });
  const { child, exit } = worker;
  const base = await worker.address();
  await eventually(async () => (await get(`${base}/health/readyz`)).status === 200, 30_000, 100);
  await eventually(async () => /iot_rotation_job_runs_total\{result="success",app="worker"\} [1-9]/.test((await get(`${base}/metrics`)).body), 20_000, 100);
  t.pass('ticks run and are counted on /metrics');
  const keys = await redis.keys(`${prefix}:{bull}:rotation:repeat:*`);
  t.ok(keys.some((k) => k.endsWith(':rotation-fleet')) && keys.some((k) => k.endsWith(':rotation-tick')), 'both schedulers exist under REDIS_KEY_PREFIX');

  child.kill('SIGTERM');
  t.equal(await exit, 0, 'exit code 0');
  // Lines can reach the pipe out of order around exit: order them by their own timestamps.
  const log = worker.output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { time: string; msg: string; step?: string })
    .sort((a, b) => a.time.localeCompare(b.time))
    .map((entry) => entry.step ?? entry.msg);
  const steps = ['shutting down', 'stop scheduler watchdog', 'close rotation worker', 'close rotation queue', 'close internal listener', 'close clients', 'shutdown complete'];
  const positions = steps.map((s) => log.indexOf(s));
  t.ok(positions.every((p) => p >= 0), 'every shutdown step is logged');
  t.same([...positions].sort((a, b) => a - b), positions, 'in order', { output: worker.output });
});

t.test('the worker process with Redis down: its health listener opens (live, not ready) and SIGTERM still exits 0', async (t) => {
  const testDb = await createTestDatabase();
  t.teardown(() => testDb.drop());
  // A port nothing listens on stands for Redis being down.
  const deadRedis = `redis://127.0.0.1:${await freePort()}`;
  const worker = startWorker(t, { DATABASE_URL: testDb.url, REDIS_URL: deadRedis, REDIS_KEY_PREFIX: uniqueRedisPrefix() });
  const { child, exit } = worker;
  const base = await worker.address();
  t.equal((await get(`${base}/health/healthz`)).status, 200, 'live: a liveness probe does not restart it');
  t.equal((await get(`${base}/health/readyz`)).status, 503, 'not ready without Redis');
  child.kill('SIGTERM');
  t.equal(await exit, 0, 'SIGTERM still exits 0');
});
