import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import { Redis } from 'ioredis';
import { deviceLogName } from '@iotsupport/contracts';
import { registryKeys } from '@iotsupport/realtime-state';
import { PERFECT_DELIVERY, deliveryReport, publishFor, recordLines, startLiveStack, watchRoundRobin } from './live-stack.js';

const DEVICES = 2; // the reconnecting clients watch devices 0 and 1; the resume test device 2
const RESUME_DEVICE = 2;
const WINDOW = 1_000; // LOG_STREAM_MAX_LINES: a gateway restart's backlog fits, a resume test can outrun it

// One stack for both tests (its start is most of their time); the Redis test needs its own.
const stack = await startLiveStack(t, { pods: 2, devices: 3, env: { LOG_STREAM_MAX_LINES: String(WINDOW) } });

t.test('the gateway killed and restarted while lines flow: clients reconnect, resume, and show every line once, in order', async (t) => {
  const { clients, told, linesOf, allShown } = await watchRoundRobin(stack, DEVICES, 6);
  const flow = publishFor(stack, DEVICES, 200, 6);
  await eventually(() => clients.every((_, i) => linesOf(i).length >= 50), 20_000);
  await stack.killGateway();
  await eventually(() => clients.every((c) => c.state === 'reconnecting'), 10_000);
  await new Promise((r) => setTimeout(r, 1_000)); // lines go on flowing while no stream is open
  await stack.startGateway();
  await flow;
  await eventually(allShown, 20_000).catch(() => undefined);
  clients.forEach((c, i) => {
    t.same(deliveryReport(linesOf(i), stack.published(i % DEVICES)), PERFECT_DELIVERY, `${c.requestId}: every line once, in order`);
    t.same(told[i]!.unrecovered, [], 'every resume was recovered');
    t.ok(c.stats.reconnects >= 1, 'it did reconnect');
  });
});

t.test('resume with since: inside the window the missing lines then live ones; trimmed or another epoch: recovered false', async (t) => {
  const device = stack.deviceId(RESUME_DEVICE);
  const entity = stack.entityId(RESUME_DEVICE);
  const first = stack.client();
  const firstShown = recordLines(first);
  await first.watch(device);
  for (let k = 0; k < 4; k++) await stack.publish(RESUME_DEVICE, 5);
  await eventually(() => (firstShown.get(entity) ?? []).length === 20, 20_000);
  const cursor = first.cursorOf(entity)!;
  first.close(); // a page reload: the page kept the cursor

  for (let k = 0; k < 2; k++) await stack.publish(RESUME_DEVICE, 5); // 10 lines while away: inside the window
  const second = stack.client();
  const secondShown = recordLines(second);
  const inside = await second.watch(device, { resumeFrom: { deviceEntityId: entity, cursor } });
  t.equal(inside.recovered, true, 'inside the window: recovered');
  await stack.publish(RESUME_DEVICE, 5); // live
  await eventually(() => (secondShown.get(entity) ?? []).length >= 15, 20_000).catch(() => undefined);
  t.same(deliveryReport(secondShown.get(entity) ?? [], stack.published(RESUME_DEVICE).slice(20)), PERFECT_DELIVERY, 'exactly the missing lines, then the live ones');

  for (let k = 0; k <= WINDOW / 10; k++) await stack.publish(RESUME_DEVICE, 10); // a window and more: the line after the cursor is trimmed
  await eventually(async () => (await stack.fleet.redis.xlen(deviceLogName(stack.fleet.prefix, entity, 'stream'))) === WINDOW, 20_000);
  const third = stack.client();
  const unrecovered: unknown[] = [];
  third.on('unrecovered', (e) => unrecovered.push(e));
  const outside = await third.watch(device, { resumeFrom: { deviceEntityId: entity, cursor } });
  t.equal(outside.recovered, false, 'trimmed: not recovered');
  t.same(unrecovered, [{ deviceId: device, deviceEntityId: entity, since: cursor, cursor: outside.cursor }], 'the client says so');

  const otherEpoch = `otherEpoch00:${cursor.split(':')[1]}`;
  const fourth = stack.client();
  const resets: unknown[] = [];
  fourth.on('reset', (e) => resets.push(e));
  const elsewhere = await fourth.watch(device, { resumeFrom: { deviceEntityId: entity, cursor: otherEpoch } });
  t.equal(elsewhere.recovered, false, 'another epoch: not recovered');
  t.same(resets, [{ deviceId: device, deviceEntityId: entity, from: otherEpoch, to: elsewhere.cursor }], 'the client reports the reset');
});

t.test('a device unwatched while the stream is down is unsubscribed when the stream reopens', async (t) => {
  const client = stack.client();
  const shown = recordLines(client);
  await Promise.all([client.watch(stack.deviceId(0)), client.watch(stack.deviceId(1))]);
  await stack.killGateway();
  await eventually(() => client.state === 'reconnecting', 10_000);
  await client.unwatch(stack.deviceId(1)); // nothing can be sent now: the subscription would carry over
  await stack.startGateway();
  await eventually(() => client.state === 'connected', 20_000);
  const devicesKey = registryKeys(stack.fleet.prefix).connectionDevices(client.requestId);
  const registry = new Redis(stack.redisUrl);
  t.teardown(() => registry.disconnect());
  await eventually(async () => (await registry.hexists(devicesKey, String(stack.deviceId(1)))) === 0, 10_000);
  t.same(Object.keys(await registry.hgetall(devicesKey)), [String(stack.deviceId(0))], 'only the watched device is subscribed');
  const before = shown.get(stack.entityId(0))?.length ?? 0;
  await stack.publish(1, 5);
  await stack.publish(0, 5);
  await eventually(() => (shown.get(stack.entityId(0))?.length ?? 0) >= before + 5, 20_000);
  t.same(shown.get(stack.entityId(1)) ?? [], [], 'no line of the unwatched device');
});
