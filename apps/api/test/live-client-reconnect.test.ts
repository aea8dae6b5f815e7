import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import { deviceLogName, parseCursor } from '@iotsupport/contracts';
import type { LiveClient, LiveClientEvents } from '@iotsupport/live-client/node';
import { PERFECT_DELIVERY, deliveryReport, publishFor, recordLines, startLiveStack, type LiveStack } from './live-stack.js';

const DEVICES = 2;

/** Clients watching the devices round robin, with what each showed and told. */
async function watchers(stack: LiveStack, count: number) {
  const clients: LiveClient[] = [];
  const shown: Array<Map<string, number[]>> = [];
  const told: Array<{ unrecovered: LiveClientEvents['unrecovered'][]; reset: LiveClientEvents['reset'][]; states: string[] }> = [];
  for (let i = 0; i < count; i++) {
    const client = stack.client();
    clients.push(client);
    shown.push(recordLines(client));
    const record = { unrecovered: [] as LiveClientEvents['unrecovered'][], reset: [] as LiveClientEvents['reset'][], states: [] as string[] };
    client.on('unrecovered', (e) => record.unrecovered.push(e));
    client.on('reset', (e) => record.reset.push(e));
    client.on('state', (e) => record.states.push(e.state));
    told.push(record);
  }
  await Promise.all(clients.map((c, i) => c.watch(stack.deviceId(i % DEVICES))));
  const linesOf = (i: number) => shown[i]!.get(stack.entityId(i % DEVICES)) ?? [];
  const allShown = () => clients.every((_, i) => linesOf(i).length >= stack.published(i % DEVICES).length);
  return { clients, told, linesOf, allShown };
}

t.test('the gateway killed and restarted while lines flow: clients reconnect, resume, and show every line once, in order', async (t) => {
  const stack = await startLiveStack(t, { pods: 2, devices: DEVICES });
  const { clients, told, linesOf, allShown } = await watchers(stack, 6);
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

t.test('Redis restarted empty with streams open: every stream closed within 10 s; clients resume into a new epoch and show new lines', async (t) => {
  const stack = await startLiveStack(t, { pods: 2, devices: DEVICES, ownRedis: true });
  const { clients, told, linesOf } = await watchers(stack, 4);
  for (let k = 0; k < 4; k++) await stack.publish(k % DEVICES, 5);
  await eventually(() => clients.every((_, i) => linesOf(i).length === 10), 20_000);
  const epochBefore = clients.map((c, i) => parseCursor(c.cursorOf(stack.entityId(i % DEVICES))!)!.epoch);

  const restartedAt = Date.now();
  const closedAfter: number[] = [];
  clients.forEach((c) => c.on('state', ({ state }) => state === 'reconnecting' && closedAfter.push(Date.now() - restartedAt)));
  await stack.restartRedisEmpty();
  // The bound the issue sets: a stream left open and unserved would keep its client deaf for good.
  await eventually(() => told.every((r) => r.states.includes('reconnecting')), 10_000);
  t.comment(`streams ended ${Math.min(...closedAfter)}–${Math.max(...closedAfter)} ms after the Redis restart began`);
  await eventually(() => told.every((r) => r.unrecovered.length > 0) && clients.every((c) => c.state === 'connected'), 20_000);

  const before = clients.map((_, i) => linesOf(i).length);
  const publishedBefore = [0, 1].map((d) => stack.published(d).length);
  for (let k = 0; k < 4; k++) await stack.publish(k % DEVICES, 5);
  await eventually(() => clients.every((_, i) => linesOf(i).length >= before[i]! + 10), 20_000).catch(() => undefined);
  clients.forEach((c, i) => {
    const device = i % DEVICES;
    t.same(deliveryReport(linesOf(i).slice(before[i]!), stack.published(device).slice(publishedBefore[device]!)), PERFECT_DELIVERY, `${c.requestId}: the new lines, once, in order`);
    const epochAfter = parseCursor(c.cursorOf(stack.entityId(device))!)!.epoch;
    t.not(epochAfter, epochBefore[i], 'a new epoch');
    t.equal(told[i]!.unrecovered[0]?.since.split(':')[0], epochBefore[i], 'told the resume from the old epoch was not recovered');
    t.ok(told[i]!.reset.length > 0, 'told the history was reset');
  });
});

t.test('resume with since: inside the window the missing lines then live ones; trimmed or another epoch: recovered false', async (t) => {
  const stack = await startLiveStack(t, { pods: 2, devices: 1, env: { LOG_STREAM_MAX_LINES: '50' } });
  const device = stack.deviceId(0);
  const entity = stack.entityId(0);
  const first = stack.client();
  const firstShown = recordLines(first);
  await first.watch(device);
  for (let k = 0; k < 4; k++) await stack.publish(0, 5);
  await eventually(() => (firstShown.get(entity) ?? []).length === 20, 20_000);
  const cursor = first.cursorOf(entity)!;
  first.close(); // a page reload: the page kept the cursor

  for (let k = 0; k < 2; k++) await stack.publish(0, 5); // 10 lines while away: inside the 50-line window
  const second = stack.client();
  const secondShown = recordLines(second);
  const inside = await second.watch(device, { resumeFrom: { deviceEntityId: entity, cursor } });
  t.equal(inside.recovered, true, 'inside the window: recovered');
  await stack.publish(0, 5); // live
  await eventually(() => (secondShown.get(entity) ?? []).length >= 15, 20_000).catch(() => undefined);
  t.same(deliveryReport(secondShown.get(entity) ?? [], stack.published(0).slice(20)), PERFECT_DELIVERY, 'exactly the missing lines, then the live ones');

  for (let k = 0; k < 12; k++) await stack.publish(0, 5); // 60 more: the line after the cursor is trimmed
  await eventually(async () => (await stack.fleet.redis.xlen(deviceLogName(stack.fleet.prefix, entity, 'stream'))) === 50, 20_000);
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
