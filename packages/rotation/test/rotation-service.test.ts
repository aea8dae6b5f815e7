import t, { type Test } from 'tap';
import mqtt from 'mqtt';
import { sql } from 'kysely';
import { Registry } from 'prom-client';
import { eventually, freePort, LOCAL_MQTT_URL, metricValue, uniqueTopicPrefix } from '@iotsupport/testkit';
import { createRotationService, createSecretBox, PROVISIONING_TOPIC, RotationService, type NudgeSource } from '../src/index.js';
import { ageAttempt, createFleet, silentLogger, stateOf, type Fleet } from './helpers.js';

/**
 * The service's promise: the MQTT notice and the nudge go out only after the change they announce
 * is committed. The recording notifier and nudger read the database on their own connection at
 * the moment they are called — an uncommitted change would be invisible to them. `seen` is in the
 * order they were called (the notice and the nudge run side by side).
 */
async function recordingService(t: Test, count: number) {
  const fleet = await createFleet(t, count);
  const seen: Array<{ kind: 'notice' | 'nudge'; detail: string; states: Record<number, string> }> = [];
  const record = async (kind: 'notice' | 'nudge', detail: string) => {
    const entry = { kind, detail, states: {} };
    seen.push(entry);
    entry.states = await snapshot();
  };
  const snapshot = async () => {
    const rows = await fleet.db.db.selectFrom('devices').select(['id', 'rotation_state']).orderBy('id').execute();
    return Object.fromEntries(rows.map((r) => [r.id, r.rotation_state]));
  };
  let failNotices = false;
  const service = new RotationService({
    db: fleet.db.db,
    secretBox: createSecretBox({ secretKey: 'service-test-secret-key-01234567', nodeEnv: 'test', logger: silentLogger }),
    notifier: {
      notify: async (clientId) => {
        await record('notice', clientId);
        if (failNotices) throw new Error('broker unreachable');
      },
    },
    nudger: { nudge: (source: NudgeSource) => record('nudge', source) },
    logger: silentLogger,
    timeoutSeconds: 300,
    criticalThresholdDays: 7,
  });
  return { ...fleet, service, seen, failNotices: (v: boolean) => (failNotices = v) };
}

t.test('notices and nudges see the committed state they announce', async (t) => {
  const { service, devices, seen } = await recordingService(t, 2);
  const [a, b] = devices as [(typeof devices)[0], (typeof devices)[0]];

  t.same(await service.triggerFleet('web'), { queued_count: 2 });
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), [`notice:iotdevice-thermo-x-${a.key}`, 'nudge:web']);
  t.equal(seen[0]!.states[a.id], 'PENDING', 'the device was PENDING (committed) when it was told');
  t.equal(seen[1]!.states[a.id], 'PENDING', 'and when the dashboards were nudged');

  seen.length = 0;
  await service.provision(a);
  t.same(seen, [], 'fetching credentials announces nothing');
  await service.deviceConfig(a, 'web');
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), [`notice:iotdevice-thermo-x-${b.key}`, 'nudge:web']);
  t.same(seen[0]!.states, { [a.id]: 'OK', [b.id]: 'PENDING' }, 'completion and the next start were both committed before the notice');
  t.same(seen[1]!.states, { [a.id]: 'OK', [b.id]: 'PENDING' });
});

t.test('a tick that changes nothing nudges nobody; a timeout nudges after the commit', async (t) => {
  const { service, devices, seen, db } = await recordingService(t, 1);
  const [a] = devices as [(typeof devices)[0]];
  t.same(await service.tick('worker'), { expired: [], started: null });
  t.same(seen, [], 'an idle tick is silent');

  await service.rotateDevice(a.id, 'web');
  seen.length = 0;
  await ageAttempt(db, a.id, 301);
  const result = await service.tick('worker');
  t.same(result.expired, [a.id]);
  t.equal(result.started, a.id, 'the only device is retried at once');
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), [`notice:iotdevice-thermo-x-${a.key}`, 'nudge:worker']);
});

t.test('a notice that cannot be delivered does not undo the committed state, and the nudge still goes out', async (t) => {
  const { service, devices, seen, db, failNotices } = await recordingService(t, 1);
  failNotices(true);
  t.same(await service.rotateDevice(devices[0]!.id, 'web'), { status: 'queued' });
  t.equal(await stateOf(db, devices[0]!.id), 'PENDING', 'the device stays PENDING and will time out if it never hears');
  t.same(seen.map((s) => s.kind), ['notice', 'nudge']);
});

/** Makes every transition to PENDING fail in the database, as a broken start would; undone by `allow`. */
async function refusePendingStarts(fleet: Fleet): Promise<{ allow: () => Promise<void> }> {
  await sql`create function refuse_pending() returns trigger language plpgsql as $$
            begin if new.rotation_state = 'PENDING' then raise exception 'no device may start now'; end if; return new; end $$`.execute(fleet.db.db);
  await sql`create trigger refuse_pending before update on devices for each row execute function refuse_pending()`.execute(fleet.db.db);
  return { allow: async () => void (await sql`drop trigger refuse_pending on devices`.execute(fleet.db.db)) };
}

t.test('a completion is announced and config answers even when starting the next device fails; the next tick starts it', async (t) => {
  const svc = await recordingService(t, 2);
  const { service, devices, seen, db } = svc;
  const [a, b] = devices as [(typeof devices)[0], (typeof devices)[0]];
  await service.triggerFleet('web');
  await service.provision(a);
  seen.length = 0;

  const refusal = await refusePendingStarts(svc);
  t.same(await service.deviceConfig(a, 'web'), a.config, 'the device gets its config');
  t.equal(await stateOf(db, a.id), 'OK', 'the completion stands');
  t.equal(await stateOf(db, b.id), 'QUEUED', 'the next device did not start');
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), ['nudge:web'], 'the completion was announced');
  t.same(seen[0]!.states, { [a.id]: 'OK', [b.id]: 'QUEUED' });

  await refusal.allow();
  seen.length = 0;
  t.same(await service.tick('worker'), { expired: [], started: b.id }, 'the next tick starts it');
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), [`notice:iotdevice-thermo-x-${b.key}`, 'nudge:worker']);
});

t.test('a timeout is announced even when starting the next device fails', async (t) => {
  const svc = await recordingService(t, 1);
  const { service, devices, seen, db } = svc;
  const [a] = devices as [(typeof devices)[0]];
  await service.rotateDevice(a.id, 'web');
  await ageAttempt(db, a.id, 301);
  seen.length = 0;

  const refusal = await refusePendingStarts(svc);
  t.same(await service.tick('worker'), { expired: [a.id], started: null });
  t.equal(await stateOf(db, a.id), 'TIMEOUT', 'the timeout stands');
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), ['nudge:worker'], 'the timeout was announced');
  await refusal.allow();
  t.same(await service.tick('worker'), { expired: [], started: a.id }, 'the retry starts on the next tick');
});

t.test('rotating a device that is already QUEUED changes nothing and nudges nobody', async (t) => {
  const { service, devices, seen, db } = await recordingService(t, 2);
  const [a, b] = devices as [(typeof devices)[0], (typeof devices)[0]];
  t.same(await service.rotateDevice(a.id, 'web'), { status: 'queued' });
  t.same(await service.rotateDevice(b.id, 'web'), { status: 'queued' });
  t.same(seen.map((s) => `${s.kind}:${s.detail}`), [`notice:iotdevice-thermo-x-${a.key}`, 'nudge:web', 'nudge:web'], 'A started, B queued');
  seen.length = 0;
  t.same(await service.rotateDevice(b.id, 'web'), { status: 'queued' }, 'the answer is the same');
  t.equal(await stateOf(db, b.id), 'QUEUED');
  t.same(seen, [], 'but no dashboard is told to re-read an unchanged fleet');
});

/** The service as the apps build it, on a real MQTT client, recording the nudges it sends. */
async function mqttService(t: Test, mqttUrl: string, topicPrefix = uniqueTopicPrefix()) {
  const fleet = await createFleet(t, 1);
  const mqttClient = mqtt.connect(mqttUrl, { reconnectPeriod: 100, connectTimeout: 200 });
  mqttClient.on('error', () => {});
  t.teardown(() => mqttClient.endAsync(true));
  const nudges: NudgeSource[] = [];
  const registry = new Registry();
  const service = createRotationService({
    config: { NODE_ENV: 'test', SECRET_KEY: 'service-test-secret-key-01234567', MQTT_TOPIC_PREFIX: topicPrefix, ROTATION_TIMEOUT_SECONDS: 300, ROTATION_CRITICAL_THRESHOLD_DAYS: 7 },
    db: fleet.db.db,
    mqttClient,
    nudger: { nudge: async (source) => void nudges.push(source) },
    logger: silentLogger,
    registry,
    noticeTimeoutMs: 1000,
  });
  return { ...fleet, service, nudges, registry, topic: `${topicPrefix}${PROVISIONING_TOPIC}` };
}

t.test('the notice reaches Mosquitto on the prefixed provisioning topic after the device is PENDING', async (t) => {
  const { service, devices, db, nudges, registry, topic } = await mqttService(t, LOCAL_MQTT_URL);
  const listener = await mqtt.connectAsync(LOCAL_MQTT_URL);
  t.teardown(() => listener.endAsync());
  const received: Array<{ clientId: string; state: Promise<string> }> = [];
  listener.on('message', (_topic, payload) => {
    const { client_id } = JSON.parse(payload.toString()) as { client_id: string };
    received.push({ clientId: client_id, state: stateOf(db, devices[0]!.id) });
  });
  await listener.subscribeAsync(topic, { qos: 1 });

  t.same(await service.rotateDevice(devices[0]!.id, 'web'), { status: 'queued' });
  await eventually(() => received.length === 1, 5000);
  t.equal(received[0]!.clientId, `iotdevice-thermo-x-${devices[0]!.key}`);
  t.equal(await received[0]!.state, 'PENDING', 'the device was already PENDING when the notice arrived');
  t.same(nudges, ['web']);
  t.equal(await metricValue(registry, 'iot_rotation_notices_total', { result: 'published' }), 1);
});

async function brokerDown(t: Test) {
  return mqttService(t, `mqtt://127.0.0.1:${await freePort()}`);
}

t.test('with the broker down, a fleet trigger answers, its nudge goes out at once, the failed notice is counted', async (t) => {
  const { service, devices, db, nudges, registry } = await brokerDown(t);
  let answer: { queued_count: number } | undefined;
  void service.triggerFleet('web').then((a) => (answer = a));
  await eventually(() => nudges.length === 1, 5000);
  t.same(nudges, ['web'], 'the dashboards hear of the rotation without waiting for the broker');
  t.same(await eventually(() => answer, 10_000), { queued_count: 1 }, 'the trigger answers once the notice is given up');
  t.equal(await stateOf(db, devices[0]!.id), 'PENDING', 'the device stays PENDING and will time out if it never hears');
  t.equal(await metricValue(registry, 'iot_rotation_notices_total', { result: 'failed' }), 1, 'the undelivered notice is counted');
  t.equal(await metricValue(registry, 'iot_rotation_notices_total', { result: 'published' }), 0);
});

t.test('with the broker down, a device rotate and the worker tick that retries it answer and nudge at once', async (t) => {
  const { service, devices, db, nudges, registry } = await brokerDown(t);
  const a = devices[0]!;
  let rotated: { status: string } | undefined;
  void service.rotateDevice(a.id, 'web').then((r) => (rotated = r));
  await eventually(() => nudges.length === 1, 5000);
  t.same(await eventually(() => rotated, 10_000), { status: 'queued' });

  await ageAttempt(db, a.id, 301);
  let ticked: { expired: number[]; started: number | null } | undefined;
  void service.tick('worker').then((r) => (ticked = r));
  await eventually(() => nudges.length === 2, 5000);
  t.same(nudges, ['web', 'worker'], 'the start and the timeout with its retry were announced without waiting for the broker');
  t.same(await eventually(() => ticked, 10_000), { expired: [a.id], started: a.id }, 'the tick job finishes (it does not stall the queue)');
  t.equal(await metricValue(registry, 'iot_rotation_notices_total', { result: 'failed' }), 2);
});
