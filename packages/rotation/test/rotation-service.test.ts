import t, { type Test } from 'tap';
import { createSecretBox, RotationService, type NudgeSource } from '../src/index.js';
import { ageAttempt, createFleet, silentLogger, stateOf } from './helpers.js';

/**
 * The service's promise: the MQTT notice and the nudge go out only after the change they announce
 * is committed. The recording notifier and nudger read the database on their own connection at
 * the moment they are called — an uncommitted change would be invisible to them.
 */
async function recordingService(t: Test, count: number) {
  const fleet = await createFleet(t, count);
  const seen: Array<{ kind: 'notice' | 'nudge'; detail: string; states: Record<number, string> }> = [];
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
        seen.push({ kind: 'notice', detail: clientId, states: await snapshot() });
        if (failNotices) throw new Error('broker unreachable');
      },
    },
    nudger: { nudge: async (source: NudgeSource) => void seen.push({ kind: 'nudge', detail: source, states: await snapshot() }) },
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
