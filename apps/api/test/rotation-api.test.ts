import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import { buildTestApi } from './helpers.js';
import { call, createDevices, watchNotices, watchNudges } from './rotation-helpers.js';

t.test('status and dashboard of a fresh fleet', async (t) => {
  const { publicServer: app, deps } = await buildTestApi(t, { ROTATION_CRON: '15 4 * * *', ROTATION_CRITICAL_THRESHOLD_DAYS: '7' });
  const devices = await createDevices(app, 3);
  await app.inject({ method: 'PUT', url: `/api/devices/${devices[2]!.id}`, payload: { active: false } });
  // Device 1's secret is 10 days old: past the 7-day threshold.
  await deps.db.updateTable('devices').set({ secret_created_at: new Date(Date.now() - 10 * 86_400_000) }).where('id', '=', devices[1]!.id).execute();

  const status = await call(app, 'GET', '/api/rotation/status');
  t.equal(status.status, 200);
  t.same(status.body, {
    counts_by_state: { OK: 2, QUEUED: 0, PENDING: 0, TIMEOUT: 0 },
    inactive: 1,
    pending_device_id: null,
    last_rotation_completed_at: null,
    next_scheduled_rotation: status.body.next_scheduled_rotation,
  });
  t.match(status.body.next_scheduled_rotation, /T04:15:00\.000Z$/, 'next run of ROTATION_CRON, in UTC');

  const dashboard = await call(app, 'GET', '/api/rotation/dashboard');
  t.same(dashboard.body.counts, { healthy: 1, warning: 0, critical: 1, inactive: 1 });
  t.same(dashboard.body.critical.map((d: { id: number }) => d.id), [devices[1]!.id]);
  t.match(dashboard.body.healthy[0], {
    id: devices[0]!.id,
    key: 'key00000',
    device_name: 'Device 0',
    device_model_code: 'thermo-x',
    rotation_state: 'OK',
    days_since_rotation: null,
  });
});

t.test('fleet trigger: devices queued, one PENDING, told on MQTT, one nudge per trigger', async (t) => {
  const { publicServer: app, config } = await buildTestApi(t);
  const devices = await createDevices(app, 3);
  const nudges = await watchNudges(t, config);
  const notices = await watchNotices(t, config);

  const trigger = await call(app, 'POST', '/api/rotation/trigger');
  t.same(trigger, { status: 200, body: { queued_count: 3 } });
  const status = (await call(app, 'GET', '/api/rotation/status')).body;
  t.same(status.counts_by_state, { OK: 0, QUEUED: 2, PENDING: 1, TIMEOUT: 0 });
  const pending = devices.find((d) => d.id === status.pending_device_id)!;
  await eventually(() => notices.length === 1 && nudges.length === 1, 5000);
  t.same(notices, [`iotdevice-thermo-x-${pending.key}`], 'the PENDING device is told, with its client id');
  t.same(nudges, ['web']);

  t.same((await call(app, 'POST', '/api/rotation/trigger')).body, { queued_count: 0 }, 'nothing left to queue');
  await eventually(() => nudges.length === 2, 5000);
  t.equal(notices.length, 1, 'no second notice while a device is PENDING');
});

t.test('single-device rotate: queued, already pending, unknown, inactive, bad id', async (t) => {
  const { publicServer: app, config } = await buildTestApi(t);
  const [a, b, c] = await createDevices(app, 3);
  const nudges = await watchNudges(t, config);
  const notices = await watchNotices(t, config);

  t.same(await call(app, 'POST', `/api/devices/${a!.id}/rotate`), { status: 200, body: { status: 'queued' } });
  await eventually(() => notices.length === 1 && nudges.length === 1, 5000);
  t.same(notices, [`iotdevice-thermo-x-${a!.key}`], 'nothing else was PENDING, so it started at once');
  t.same(await call(app, 'POST', `/api/devices/${a!.id}/rotate`), { status: 200, body: { status: 'already_pending' } });
  t.same(await call(app, 'POST', `/api/devices/${b!.id}/rotate`), { status: 200, body: { status: 'queued' } });
  t.equal((await call(app, 'GET', `/api/devices/${b!.id}`)).body.rotation_state, 'QUEUED');

  await app.inject({ method: 'PUT', url: `/api/devices/${c!.id}`, payload: { active: false } });
  t.match(await call(app, 'POST', `/api/devices/${c!.id}/rotate`), { status: 409, body: { code: 'DEVICE_INACTIVE' } });
  t.match(await call(app, 'POST', '/api/devices/999999/rotate'), { status: 404, body: { code: 'DEVICE_NOT_FOUND' } });
  t.match(await call(app, 'POST', '/api/devices/abc/rotate'), { status: 400, body: { code: 'VALIDATION_FAILED' } });
  await eventually(() => nudges.length === 2, 5000);
  t.same(nudges, ['web', 'web'], 'one nudge per queued rotate; none for already_pending or errors');
});

t.test('twenty concurrent trigger calls: every device queued once, at most one PENDING', async (t) => {
  const { publicServer: app, deps } = await buildTestApi(t);
  await createDevices(app, 12);
  const results = await Promise.all(Array.from({ length: 20 }, () => call(app, 'POST', '/api/rotation/trigger')));
  t.ok(results.every((r) => r.status === 200));
  t.equal(results.reduce((n, r) => n + (r.body.queued_count as number), 0), 12, 'each device counted by exactly one call');
  const pending = await deps.db.selectFrom('devices').select('id').where('rotation_state', '=', 'PENDING').execute();
  t.equal(pending.length, 1);
});
