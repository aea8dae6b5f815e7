import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { Job, Worker } from 'bullmq';
import { Registry } from 'prom-client';
import { deleteRedisPrefix, eventually, LOCAL_REDIS_URL, uniqueRedisPrefix } from '@iotsupport/testkit';
import {
  createRotationMetrics,
  createRotationQueue,
  createRotationWorker,
  createSecretBox,
  ensureSchedulers,
  FLEET_SCHEDULER_ID,
  nextFleetRun,
  RotationService,
  SchedulerWatchdog,
  scheduledSlot,
  TICK_SCHEDULER_ID,
  type NudgeSource,
} from '../src/index.js';
import { createFleet, silentLogger } from './helpers.js';

function redisFor(t: Test, prefix?: string): Redis {
  const redis = new Redis(LOCAL_REDIS_URL, { maxRetriesPerRequest: null });
  t.teardown(async () => {
    if (prefix) await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
  });
  return redis;
}

const settings = { cron: '0 2 * * *', tickSeconds: 5 };

/** A queue on a fresh prefix whose schedulers exist with `settings`, and a watchdog's repair log. */
async function scheduledQueue(t: Test) {
  const prefix = uniqueRedisPrefix();
  redisFor(t, prefix);
  const queue = createRotationQueue(redisFor(t), prefix);
  t.teardown(() => queue.close());
  await ensureSchedulers(queue, settings, true);
  const repairs: string[] = [];
  return { queue, repairs, onRepair: (r: { scheduler: string; reason: string }) => repairs.push(`${r.scheduler}:${r.reason}`) };
}


t.test('schedulers are created once however many workers start at the same time, and a restart leaves them alone', async (t) => {
  const prefix = uniqueRedisPrefix();
  redisFor(t, prefix);
  const queues = Array.from({ length: 5 }, () => createRotationQueue(redisFor(t), prefix));
  t.teardown(() => Promise.all(queues.map((q) => q.close())));

  await Promise.all(queues.map((q) => ensureSchedulers(q, settings, true)));
  const queue = queues[0]!;
  const schedulers = await queue.getJobSchedulers();
  t.same(schedulers.map((s) => s.key).sort(), [FLEET_SCHEDULER_ID, TICK_SCHEDULER_ID]);
  t.equal(schedulers.find((s) => s.key === FLEET_SCHEDULER_ID)?.pattern, '0 2 * * *');
  t.equal(schedulers.find((s) => s.key === TICK_SCHEDULER_ID)?.every, 5000);
  t.equal(await queue.getJobCountByTypes('delayed', 'wait', 'prioritized'), 2, 'one pending job per scheduler, no duplicates');

  t.same(await ensureSchedulers(queue, settings, true), [], 'a healthy setup is not touched on restart');

  const changed = await ensureSchedulers(queue, { ...settings, cron: '30 3 * * *' }, true);
  t.same(changed, [{ scheduler: FLEET_SCHEDULER_ID, reason: 'settings_changed' }], 'a new ROTATION_CRON applies on start');
  t.equal((await queue.getJobScheduler(FLEET_SCHEDULER_ID))?.pattern, '30 3 * * *');
  t.same(await ensureSchedulers(queue, settings, false), [], 'the watchdog does not fight over settings');

  const next = await nextFleetRun(queue, '30 3 * * *');
  t.equal(next?.getUTCHours(), 3);
  t.equal(next?.getUTCMinutes(), 30);
});

t.test('the watchdog re-creates a scheduler that was removed', async (t) => {
  const { queue, repairs, onRepair } = await scheduledQueue(t);
  const watchdog = new SchedulerWatchdog({ queue, settings, intervalMs: 50, logger: silentLogger, onRepair });
  watchdog.start();
  t.teardown(() => watchdog.stop());

  await queue.removeJobScheduler(TICK_SCHEDULER_ID);
  // The repair is reported after the upsert returns: wait for the report, not just the key.
  await eventually(() => repairs.length > 0, 5000);
  t.same(repairs, [`${TICK_SCHEDULER_ID}:missing`]);
  t.ok(await queue.getJobScheduler(TICK_SCHEDULER_ID), 'the scheduler is back');
  const scheduler = await queue.getJobScheduler(TICK_SCHEDULER_ID);
  t.ok(await queue.getJob(`repeat:${TICK_SCHEDULER_ID}:${scheduler?.next}`), 'with the job of its next slot');
});

t.test('two workers: every scheduled slot runs exactly once', async (t) => {
  const prefix = uniqueRedisPrefix();
  redisFor(t, prefix);
  const { db } = await createFleet(t, 0);
  const nudges: NudgeSource[] = [];
  const service = new RotationService({
    db: db.db,
    secretBox: createSecretBox({ secretKey: 'scheduling-test-secret-key-0123', nodeEnv: 'test', logger: silentLogger }),
    notifier: { notify: async () => {} },
    nudger: { nudge: async (source) => void nudges.push(source) },
    logger: silentLogger,
    timeoutSeconds: 300,
    criticalThresholdDays: 7,
  });
  const runs: Array<{ worker: number; jobId: string; name: string }> = [];
  const registries = [new Registry(), new Registry()];
  const workers: Worker[] = registries.map((registry, i) =>
    createRotationWorker({
      connection: redisFor(t),
      redisKeyPrefix: prefix,
      service,
      metrics: createRotationMetrics(registry),
      logger: silentLogger,
      onRun: (job: Job) => runs.push({ worker: i, jobId: job.id!, name: job.name }),
    }),
  );
  t.teardown(() => Promise.all(workers.map((w) => w.close())));
  // Both "workers" start their schedulers at once, as two pods would: tick every second, fleet every second.
  const queues = [createRotationQueue(redisFor(t), prefix), createRotationQueue(redisFor(t), prefix)];
  t.teardown(() => Promise.all(queues.map((q) => q.close())));
  const fast = { cron: '* * * * * *', tickSeconds: 1 };
  await Promise.all(queues.map((q) => ensureSchedulers(q, fast, true)));

  await eventually(() => runs.filter((r) => r.name === 'tick').length >= 4 && runs.filter((r) => r.name === 'fleet').length >= 4, 20_000, 50);
  await Promise.all(workers.map((w) => w.close()));

  const ids = runs.map((r) => r.jobId);
  t.equal(new Set(ids).size, ids.length, 'no slot ran twice');
  t.ok(ids.every((id) => /^repeat:rotation-(tick|fleet):\d+$/.test(id)), 'each run is one scheduler slot');
  const counted = await Promise.all(registries.map(async (r) => (await r.getSingleMetric('iot_rotation_job_runs_total')!.get()).values));
  const total = counted.flat().filter((v) => v.labels.result === 'success').reduce((n, v) => n + v.value, 0);
  t.equal(total, runs.length, 'iot_rotation_job_runs_total{result="success"} counts every run once');
  t.ok(nudges.every((s) => s === 'worker'), 'jobs nudge as the worker');
});

t.test('a scheduler job stands for the slot in its id', async (t) => {
  t.same(scheduledSlot({ id: 'repeat:rotation-fleet:1795471215265', timestamp: 1 }), new Date(1795471215265));
  t.same(scheduledSlot({ id: undefined, timestamp: 42 }), new Date(42), 'a job without a slot id falls back to its creation time');
});

t.test('a watchdog applies a changed ROTATION_CRON on its first check only (deploy), then leaves settings alone', async (t) => {
  const { queue, repairs, onRepair } = await scheduledQueue(t);
  const deployed = { ...settings, cron: '45 4 * * *' };
  // start() checks at once; a long interval keeps a timer tick from racing the re-create below
  // (it could catch the scheduler's next job mid-replacement and repair it: not what is tested).
  const watchdog = new SchedulerWatchdog({ queue, settings: deployed, intervalMs: 60_000, logger: silentLogger, onRepair });
  watchdog.start();
  t.teardown(() => watchdog.stop());
  await eventually(() => repairs.length > 0, 5000);
  t.same(repairs, [`${FLEET_SCHEDULER_ID}:settings_changed`], 'the new cron is applied at start');
  t.equal((await queue.getJobScheduler(FLEET_SCHEDULER_ID))?.pattern, '45 4 * * *');

  // An old pod of a rolling deploy puts its cron back: the running watchdog does not fight it.
  await ensureSchedulers(queue, settings, true);
  await watchdog.check();
  t.same(repairs, [`${FLEET_SCHEDULER_ID}:settings_changed`], 'later checks leave the settings alone');
  t.equal((await queue.getJobScheduler(FLEET_SCHEDULER_ID))?.pattern, settings.cron);
});
