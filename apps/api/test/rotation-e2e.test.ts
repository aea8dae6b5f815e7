import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { decodeRotationNudge, rotationNudgeChannel } from '@iotsupport/contracts';
import { createDb, DeviceModelRepository, DeviceRepository, migrateToLatest, type Device } from '@iotsupport/db';
import { createLogger } from '@iotsupport/observability';
import { createRotationQueue, createSecretBox, RotationStore } from '@iotsupport/rotation';
import { createTestDatabase, eventually, LOCAL_REDIS_URL, uniqueId, uniqueTopicPrefix, type SseClient } from '@iotsupport/testkit';
import { startProcessFleet, sample, type ProcessFleet } from './process-fleet.js';
import { dispatchNotices, startWorkerProcess } from './worker-process.js';

/**
 * Rotation's must-show, end to end: 2 api processes and 2 worker processes (BullMQ on real
 * Redis), PostgreSQL, Mosquitto, the SSE Gateway stand-in, and simulated devices that listen on
 * MQTT and call provisioning then config. The subtests share one setup and run in order.
 */
const SECRET_KEY = 'rotation-e2e-secret-key-0123456789';
const TIMEOUT_SECONDS = 3;

/**
 * A fleet schedule that cannot fire during a run: once a year, on the day half a year from now
 * (cron-parser refuses impossible dates such as Feb 30). The test asserts the fleet job never ran.
 */
function cronFarFromNow(): string {
  const day = new Date(Date.now() + 182 * 86_400_000);
  return `0 12 ${Math.min(day.getUTCDate(), 28)} ${day.getUTCMonth() + 1} *`;
}
const FLEET_CRON = cronFarFromNow();

type Behaviour = (device: SimDevice) => Promise<void>;

interface SimDevice {
  device: Device;
  clientId: string;
  notices: number;
  /** What it does when told to rotate (replaced per subtest). */
  behaviour: Behaviour;
  provision(): Promise<{ status: number; body: { client_secret?: string } }>;
  config(): Promise<number>;
}

let fleet: ProcessFleet;
let devices: SimDevice[];
let store: RotationStore;
let nudgesPublished = 0;
/** The same, by who published them (`source`). */
const nudgesBySource: Record<string, number> = { web: 0, worker: 0, internal: 0 };
const streams: SseClient[] = [];
/** Status read by a dashboard right after each rotation-updated it received, in order. */
const dashboardReads: Array<{ counts: Record<string, number>; pending: number | null }> = [];
const workerUrls: string[] = [];
/** The workers' POD_IDs: unique per run (their MQTT client ids derive from them; another test file runs workers too). */
const workerIds = [uniqueId('worker-0'), uniqueId('worker-1')];
let stopped = false;

const box = createSecretBox({ secretKey: SECRET_KEY, nodeEnv: 'test', logger: createLogger({ level: 'silent', app: 't', podId: 't' }) });

async function api(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`http://127.0.0.1:${fleet.randomPod().port}${path}`, { method });
  return { status: res.status, body: await res.json() };
}

/** What a device got wrong from the API, checked at the end of each subtest (behaviours run outside them). */
const deviceErrors: string[] = [];

const good: Behaviour = async (d) => {
  const provisioning = (await d.provision()).status;
  const config = await d.config();
  if (provisioning !== 200 || config !== 200) deviceErrors.push(`${d.device.key}: provisioning ${provisioning}, config ${config}`);
};

t.before(async () => {
  const testDb = await createTestDatabase();
  const db = createDb(testDb.url);
  await migrateToLatest(db.db);
  const model = await new DeviceModelRepository(db.db).create({ code: 'thermo-x', name: 'Thermostat X' });
  const repo = new DeviceRepository(db.db);
  const rows = [];
  for (const key of ['rot0000a', 'rot0000b', 'rot0000c']) rows.push(await repo.create({ key, device_model_id: model.id, config: { deviceName: key } }));
  store = new RotationStore(db.db);
  const topicPrefix = uniqueTopicPrefix();

  fleet = await startProcessFleet(t, {
    pods: 2,
    env: { DATABASE_URL: testDb.url, MQTT_TOPIC_PREFIX: topicPrefix, SECRET_KEY, ROTATION_CRON: FLEET_CRON },
  });

  // Two worker processes on the same queue, as two worker pods would run.
  for (const worker of [0, 1]) {
    const started = await startWorkerProcess(t, {
      POD_ID: workerIds[worker]!,
      DATABASE_URL: testDb.url,
      REDIS_KEY_PREFIX: fleet.prefix,
      MQTT_TOPIC_PREFIX: topicPrefix,
      SECRET_KEY,
      ROTATION_CRON: FLEET_CRON,
      ROTATION_TICK_SECONDS: '1',
      ROTATION_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
    });
    workerUrls.push(started.url);
  }

  // Simulated devices: one MQTT session, notices dispatched by client id.
  devices = rows.map((device) => ({
    device,
    clientId: `iotdevice-thermo-x-${device.key}`,
    notices: 0,
    behaviour: good,
    async provision() {
      const res = await fetch(`http://127.0.0.1:${fleet.randomPod().port}/api/iot/provisioning?device_key=${device.key}`);
      return { status: res.status, body: (await res.json()) as { client_secret?: string } };
    },
    async config() {
      const res = await fetch(`http://127.0.0.1:${fleet.randomPod().port}/api/iot/config?device_key=${device.key}`);
      await res.arrayBuffer();
      return res.status;
    },
  }));
  const client = await dispatchNotices(topicPrefix, devices);
  // Every nudge published by anyone (api pods, workers), counted at the source.
  const listener = new Redis(LOCAL_REDIS_URL);
  listener.on('message', (_c, raw) => {
    const nudge = decodeRotationNudge(raw);
    if (!nudge) return;
    nudgesPublished += 1;
    nudgesBySource[nudge.source] = (nudgesBySource[nudge.source] ?? 0) + 1;
  });
  await listener.subscribe(rotationNudgeChannel(fleet.prefix));

  // Four browsers; the first behaves like the dashboard: each rotation-updated → read the status.
  for (const rid of ['dash', 'b1', 'b2', 'b3']) streams.push(await fleet.open(rid));
  void (async () => {
    for (let k = 1; !stopped; k += 1) {
      try {
        // Only its rotation-updated events count (the stream also hears stream-alive).
        await eventually(() => stopped || rotationUpdates(streams[0]!) >= k, 60_000);
        if (stopped) return;
      } catch {
        return;
      }
      const status = (await api('GET', '/api/rotation/status')).body;
      dashboardReads.push({ counts: status.counts_by_state, pending: status.pending_device_id });
    }
  })();

  t.teardown(async () => {
    stopped = true;
    await client.endAsync();
    listener.disconnect();
    await db.close();
    await testDb.drop();
  });
});

function rotationUpdates(stream: SseClient): number {
  return stream.envelopes().filter((e) => e.type === 'rotation-updated').length;
}

/**
 * Waits until the api pods published `web` nudges in all (since the start of the file) and every
 * stream got at least as many rotation-updated as were published; returns how many were. The api's
 * count is exact (RotationService: every trigger call nudges once, a completion nudges once together
 * with starting the next device, a rotate that queued nudges once). The workers nudge when a tick
 * expired or started a device, which can also win the start after a completion: counted, not fixed.
 */
async function nudgesDelivered(t: Test, web: number): Promise<number> {
  await eventually(() => nudgesBySource.web! >= web && streams.every((s) => rotationUpdates(s) >= nudgesPublished), 20_000);
  t.equal(nudgesBySource.web, web, `the api published ${web} nudges (and the workers ${nudgesBySource.worker})`);
  return nudgesPublished;
}

t.test('a full rotation of 3 devices: all OK, one at a time, each nudge once per connection, after its state is readable', async (t) => {
  // Twenty operators press "rotate fleet" at once, on both pods. The devices answer their notice
  // only once every press was answered: a press that came after a device completed would queue it
  // again, rightly (the contract: every active OK device), and this test is about concurrent presses.
  let answered!: () => void;
  const allAnswered = new Promise<void>((resolve) => (answered = resolve));
  for (const d of devices) d.behaviour = async (device) => allAnswered.then(() => good(device));
  const started = Date.now();
  const triggers = await Promise.all(Array.from({ length: 20 }, () => api('POST', '/api/rotation/trigger')));
  answered();
  t.ok(triggers.every((r) => r.status === 200));
  t.equal(triggers.reduce((n, r) => n + (r.body.queued_count as number), 0), 3, 'the 3 devices were queued exactly once');

  await eventually(async () => (await api('GET', '/api/rotation/status')).body.counts_by_state.OK === 3, 30_000, 100);
  t.comment(`trigger to 3 devices rotated: ${Date.now() - started} ms (reported, not asserted)`);
  const status = (await api('GET', '/api/rotation/status')).body;
  t.same(status.counts_by_state, { OK: 3, QUEUED: 0, PENDING: 0, TIMEOUT: 0 });
  t.equal(status.pending_device_id, null);
  t.ok(status.last_rotation_completed_at);
  t.same(devices.map((d) => d.notices), [1, 1, 1], 'each device was told once');

  // One at a time: ordered by start, each attempt began after the previous device completed.
  const dashboard = (await api('GET', '/api/rotation/dashboard')).body;
  t.equal(dashboard.counts.healthy, 3);
  const timeline = (await Promise.all(devices.map((d) => api('GET', `/api/devices/${d.device.id}`))))
    .map((r) => ({ start: Date.parse(r.body.last_rotation_attempt_at), end: Date.parse(r.body.last_rotation_completed_at) }))
    .sort((a, b) => a.start - b.start);
  for (let i = 1; i < timeline.length; i++) t.ok(timeline[i]!.start >= timeline[i - 1]!.end, `device ${i + 1} started after device ${i} completed`);

  // 20 trigger calls + 3 completions (the first two also started the next device).
  const published = await nudgesDelivered(t, 20 + 3);
  for (const [i, stream] of streams.entries()) t.equal(rotationUpdates(stream), published, `connection ${i}: every nudge exactly once`);
  // The dashboard that refreshed on the last nudge sees the final state; its reads never go backwards.
  await eventually(() => dashboardReads.length === published, 10_000);
  t.same(dashboardReads.at(-1), { counts: { OK: 3, QUEUED: 0, PENDING: 0, TIMEOUT: 0 }, pending: null }, 'the read after the last nudge shows every device rotated');
  const done = dashboardReads.map((r) => r.counts.OK!);
  t.same(done, [...done].sort((a, b) => a - b), 'each read shows at least what the previous one did');
  // The first nudge may be the fleet trigger's (devices QUEUED, none started yet) or a start's.
  const first = dashboardReads[0]!;
  t.ok(first.pending !== null || first.counts.OK! > 0 || first.counts.QUEUED! > 0, 'the first nudge already announced the queued or started rotation');
  t.same(deviceErrors, [], 'every device call succeeded');
});

t.test('config without provisioning does not complete; the fetch after the start does', async (t) => {
  const c = devices[2]!;
  let release!: () => void;
  const provisioned = new Promise<void>((r) => (release = r));
  c.behaviour = async (d) => {
    t.equal(await d.config(), 200, 'config answers');
    release();
  };
  t.same((await api('POST', `/api/devices/${c.device.id}/rotate`)).body, { status: 'queued' });
  await provisioned;
  t.equal((await api('GET', `/api/devices/${c.device.id}`)).body.rotation_state, 'PENDING', 'still PENDING after a config fetch alone');
  await good(c);
  t.equal((await api('GET', `/api/devices/${c.device.id}`)).body.rotation_state, 'OK', 'provisioning, then config: done');
  c.behaviour = good;
});

t.test('timeout: previous secret restored, device TIMEOUT, a later retry succeeds', async (t) => {
  const [a, b] = devices as [SimDevice, SimDevice];
  const original = await store.currentSecret(a.device.id, box);
  t.ok(original, 'device A has the secret of the first rotation');

  // A fetches a new secret and then goes silent; B waits for a go before doing its part.
  let fetchedDuringAttempt: string | undefined;
  a.behaviour = async (d) => {
    fetchedDuringAttempt = (await d.provision()).body.client_secret;
    a.behaviour = good; // it will answer the retry
  };
  let goB!: () => void;
  const bMayGo = new Promise<void>((r) => (goB = r));
  b.behaviour = async (d) => {
    await bMayGo;
    await good(d);
  };

  t.same((await api('POST', `/api/devices/${a.device.id}/rotate`)).body, { status: 'queued' });
  t.same((await api('POST', `/api/devices/${b.device.id}/rotate`)).body, { status: 'queued' });
  await eventually(() => fetchedDuringAttempt !== undefined, 10_000);
  t.equal(await store.currentSecret(a.device.id, box), fetchedDuringAttempt, 'during the attempt the new secret is current');

  // The worker's tick expires A after ROTATION_TIMEOUT_SECONDS and starts B (QUEUED goes before TIMEOUT).
  await eventually(async () => (await api('GET', `/api/devices/${a.device.id}`)).body.rotation_state === 'TIMEOUT', (TIMEOUT_SECONDS + 10) * 1000, 100);
  t.equal(await store.currentSecret(a.device.id, box), original, 'the secret from before the attempt is restored');
  // The tick commits the timeout, then starts B in its own transaction: wait for that second step.
  await eventually(async () => (await api('GET', '/api/rotation/status')).body.pending_device_id !== null, 10_000, 100);
  t.equal((await api('GET', '/api/rotation/status')).body.pending_device_id, b.device.id);
  const dashboard = (await api('GET', '/api/rotation/dashboard')).body;
  t.same(dashboard.warning.map((d: { id: number }) => d.id), [a.device.id], 'the dashboard lists it under warning');

  // B completes; A is retried next and this time does its part.
  goB();
  await eventually(async () => (await api('GET', '/api/rotation/status')).body.counts_by_state.OK === 3, 20_000, 100);
  t.equal(a.notices, 3, 'A was told again for the retry');
  const retried = await store.currentSecret(a.device.id, box);
  t.not(retried, original, 'A now has a fresh secret');
  t.not(retried, fetchedDuringAttempt);
  b.behaviour = good;
  t.same(deviceErrors, [], 'every device call succeeded');

  // Every api pod broadcast each nudge once to its own connections, labelled by who asked.
  // The api's so far: 23 (first subtest) + 2 (rotate, completion) + 4 here (rotate A, rotate B,
  // B's completion starting A's retry, A's completion).
  const published = await nudgesDelivered(t, 23 + 2 + 4);
  for (const pod of fleet.pods) {
    const metrics = await fleet.metrics(pod);
    const bySource = Object.fromEntries(['web', 'worker', 'internal'].map((source) => [source, sample(metrics, 'sse_rotation_nudge_broadcast_total', { source })]));
    t.equal(bySource.web! + bySource.worker! + bySource.internal!, published, `${pod.id}: each nudge counted once (${JSON.stringify(bySource)})`);
    t.ok(bySource.worker! > 0, `${pod.id}: the worker's timeout nudge is counted as source="worker"`);
  }
});

t.test('two workers: every scheduled tick ran exactly once', async (t) => {
  const connection = fleet.redis.duplicate();
  const queue = createRotationQueue(connection, fleet.prefix);
  t.teardown(async () => {
    await queue.close(); // leaves a connection it was given open
    connection.disconnect();
  });
  const ticks = (await queue.getCompleted(0, 1000)).filter((job) => job.name === 'tick');
  t.ok(ticks.length >= 5, `${ticks.length} ticks ran during the test`);
  t.ok(ticks.every((job) => /^repeat:rotation-tick:\d+$/.test(job.id ?? '')), 'each run is one scheduler slot');
  t.same(ticks.filter((job) => job.attemptsStarted !== 1).map((job) => job.id), [], 'no slot was started twice');
  t.ok(ticks.every((job) => workerIds.includes(job.processedBy ?? '')), 'run by the two worker processes');
  // Every job run the workers counted is a completed job, each once: runs == completed jobs. A run is
  // counted just before BullMQ marks its job completed and the workers keep ticking, so wait for a
  // snapshot between two ticks (runs unchanged around the read); a slot run twice never gets there.
  const workerMetrics = () => Promise.all(workerUrls.map(async (url) => (await fetch(`${url}/metrics`)).text()));
  const successes = (metrics: string[]) => metrics.map((m) => sample(m, 'iot_rotation_job_runs_total', { result: 'success' }));
  let last = { runs: [] as number[], completed: -1, metrics: [] as string[] };
  const settled = await eventually(async () => {
    const before = successes(await workerMetrics()).join();
    const completed = (await queue.getCompleted(0, 1000)).length;
    const metrics = await workerMetrics();
    last = { runs: successes(metrics), completed, metrics };
    return before === last.runs.join() && last.runs.reduce((a, b) => a + b, 0) === completed;
  }, 15_000).catch(() => false);
  t.ok(last.completed < 200, 'no completed job was trimmed yet (removeOnComplete keeps 200)');
  t.ok(settled, `one run per completed job (iot_rotation_job_runs_total per worker: ${last.runs.join(', ')}; completed jobs: ${last.completed})`);
  t.equal(last.metrics.reduce((n, m) => n + sample(m, 'iot_rotation_job_runs_total', { result: 'failure' }), 0), 0, 'no job failed');
  t.equal((await queue.getCompleted(0, 1000)).filter((job) => job.name === 'fleet').length, 0, `the fleet cron did not fire (${FLEET_CRON}, UTC)`);
});
