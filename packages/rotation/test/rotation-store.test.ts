import t from 'tap';
import { sql } from 'kysely';
import { AppError } from '@iotsupport/contracts';
import { DeviceRepository } from '@iotsupport/db';
import { createSecretBox, RotationStore } from '../src/index.js';
import { ageAttempt, createFleet, pendingCount, silentLogger, stateOf } from './helpers.js';

const box = createSecretBox({ secretKey: 'store-test-secret-key-0123456789', nodeEnv: 'test', logger: silentLogger });

t.test('the database refuses a second PENDING device', async (t) => {
  const { db, devices } = await createFleet(t, 2);
  await db.db.updateTable('devices').set({ rotation_state: 'PENDING' }).where('id', '=', devices[0]!.id).execute();
  await t.rejects(
    db.db.updateTable('devices').set({ rotation_state: 'PENDING' }).where('id', '=', devices[1]!.id).execute(),
    { code: '23505', constraint: 'devices_one_pending_idx' },
  );
});

t.test('fleet trigger queues active OK devices only; the oldest secret starts first, one at a time', async (t) => {
  const { db, devices } = await createFleet(t, 4);
  const store = new RotationStore(db.db);
  const [a, b, c, d] = devices as [typeof devices[0], typeof devices[0], typeof devices[0], typeof devices[0]];
  await new DeviceRepository(db.db).update(d.id, { active: false });
  // b has the oldest secret, a a newer one, c never had one (counts as oldest).
  await sql`update devices set secret_created_at = now() - interval '30 days' where id = ${b.id}`.execute(db.db);
  await sql`update devices set secret_created_at = now() - interval '1 day' where id = ${a.id}`.execute(db.db);

  t.equal(await store.queueFleet(), 3, 'three active OK devices queued');
  t.equal(await store.queueFleet(), 0, 'a second trigger finds nothing left to queue');
  t.equal(await stateOf(db, d.id), 'OK', 'the inactive device is left alone');

  const first = await store.startNext();
  t.equal(first?.id, c.id, 'never provisioned counts as the oldest secret');
  t.equal(first?.device_model_code, 'thermo-x');
  t.equal(await store.startNext(), undefined, 'nothing starts while one device is PENDING');
  t.equal(await pendingCount(db), 1);
});

t.test('twenty concurrent starters leave exactly one PENDING device, and losing is not an error', async (t) => {
  const { db } = await createFleet(t, 10);
  const store = new RotationStore(db.db);
  await store.queueFleet();
  const results = await Promise.all(Array.from({ length: 20 }, () => store.startNext()));
  t.equal(results.filter(Boolean).length, 1, 'one caller started a device');
  t.equal(await pendingCount(db), 1);
});

t.test('config without a provisioning fetch does not complete; a fetch after the start does', async (t) => {
  const { db, devices } = await createFleet(t, 1);
  const store = new RotationStore(db.db);
  const id = devices[0]!.id;
  // A fetch BEFORE the rotation started must not count for it.
  await store.provisionSecret(id, box);
  await store.queueFleet();
  await store.startNext();
  t.equal(await store.completeIfProvisioned(id), false, 'credentials fetched before the attempt do not count');
  t.equal(await stateOf(db, id), 'PENDING');

  const secret = await store.provisionSecret(id, box);
  t.equal(await store.currentSecret(id, box), secret, 'the new secret is stored (encrypted) as current');
  t.equal(await store.completeIfProvisioned(id), true);
  t.equal(await stateOf(db, id), 'OK');
  t.equal(await store.completeIfProvisioned(id), false, 'completing twice is a no-op');
  const row = await db.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  t.ok(row.last_rotation_completed_at, 'completion time recorded');
  t.equal(row.cached_secret, null, 'the previous secret is dropped once the new one is confirmed');
});

t.test('timeout restores the secret from before the attempt; a later retry succeeds', async (t) => {
  const { db, devices } = await createFleet(t, 2);
  const store = new RotationStore(db.db);
  const [dev, other] = devices as [typeof devices[0], typeof devices[0]];
  const original = await store.provisionSecret(dev.id, box);
  const originalRow = await db.db.selectFrom('devices').select('secret_created_at').where('id', '=', dev.id).executeTakeFirstOrThrow();
  await db.db.updateTable('devices').set({ rotation_state: 'QUEUED' }).where('id', '=', dev.id).execute();
  t.equal((await store.startNext())?.id, dev.id);

  // The device fetches twice during the attempt, then never confirms.
  await store.provisionSecret(dev.id, box);
  await store.provisionSecret(dev.id, box);
  t.same(await store.expireTimedOut(300), [], 'not overdue yet');
  await ageAttempt(db, dev.id, 301);
  t.same(await store.expireTimedOut(300), [dev.id]);
  t.equal(await stateOf(db, dev.id), 'TIMEOUT');
  t.equal(await store.currentSecret(dev.id, box), original, 'the secret from before the attempt is back');
  const restored = await db.db.selectFrom('devices').select('secret_created_at').where('id', '=', dev.id).executeTakeFirstOrThrow();
  t.same(restored.secret_created_at, originalRow.secret_created_at, 'and so is its age');

  // QUEUED devices go before TIMEOUT ones; then the TIMEOUT device is retried and succeeds.
  await db.db.updateTable('devices').set({ rotation_state: 'QUEUED' }).where('id', '=', other.id).execute();
  t.equal((await store.startNext())?.id, other.id, 'a QUEUED device goes first');
  await store.provisionSecret(other.id, box);
  t.ok(await store.completeIfProvisioned(other.id));
  t.equal((await store.startNext())?.id, dev.id, 'then the timed-out device is retried');
  const fresh = await store.provisionSecret(dev.id, box);
  t.ok(await store.completeIfProvisioned(dev.id));
  t.equal(await stateOf(db, dev.id), 'OK');
  t.equal(await store.currentSecret(dev.id, box), fresh);
});

t.test('a timeout without a provisioning fetch keeps the current secret', async (t) => {
  const { db, devices } = await createFleet(t, 1);
  const store = new RotationStore(db.db);
  const id = devices[0]!.id;
  const current = await store.provisionSecret(id, box);
  await store.queueFleet();
  await store.startNext();
  await ageAttempt(db, id, 1000);
  t.same(await store.expireTimedOut(300), [id]);
  t.equal(await store.currentSecret(id, box), current);
});

t.test('single-device rotate: queued, already pending, inactive, unknown', async (t) => {
  const { db, devices } = await createFleet(t, 2);
  const store = new RotationStore(db.db);
  const [a, b] = devices as [typeof devices[0], typeof devices[0]];
  t.same(await store.queueDevice(a.id), { result: 'queued', changed: true });
  t.same(await store.queueDevice(a.id), { result: 'queued', changed: false }, 'queuing twice changes nothing');
  await store.startNext();
  t.same(await store.queueDevice(a.id), { result: 'already_pending', changed: false });
  await new DeviceRepository(db.db).update(b.id, { active: false });
  await t.rejects(store.queueDevice(b.id), new AppError('DEVICE_INACTIVE'));
  await t.rejects(store.queueDevice(999999), new AppError('DEVICE_NOT_FOUND'));
});

t.test('counts by state separate inactive devices', async (t) => {
  const { db, devices } = await createFleet(t, 3);
  const store = new RotationStore(db.db);
  await new DeviceRepository(db.db).update(devices[2]!.id, { active: false });
  await store.queueFleet();
  const started = await store.startNext();
  const summary = await store.countByState();
  t.same(summary.counts, { OK: 0, QUEUED: 1, PENDING: 1, TIMEOUT: 0 });
  t.equal(summary.inactive, 1);
  t.equal(summary.pendingDeviceId, started?.id);
  t.equal(summary.lastCompletedAt, null);
});

t.test('a scheduled fleet run that BullMQ repeats does not rotate again what it already rotated', async (t) => {
  const { db, devices } = await createFleet(t, 1);
  const store = new RotationStore(db.db);
  const id = devices[0]!.id;
  const slot = new Date(Date.now() - 1000);
  t.equal(await store.queueFleet(slot), 1);
  await store.startNext();
  await store.provisionSecret(id, box);
  t.ok(await store.completeIfProvisioned(id));
  t.equal(await store.queueFleet(slot), 0, 'the same slot again: the device completed after it, nothing to do');
  t.equal(await store.queueFleet(new Date(Date.now() + 1000)), 1, 'the next slot rotates it again');
});
