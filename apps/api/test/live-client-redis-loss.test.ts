import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { eventually } from '@iotsupport/testkit';
import { parseCursor } from '@iotsupport/contracts';
import { CONN_FIELDS, registryKeys } from '@iotsupport/realtime-state';
import type { LiveClient } from '@iotsupport/live-client';
import { PERFECT_DELIVERY, deliveryReport, startLiveStack, watchRoundRobin, type LiveStack } from './live-stack.js';

const DEVICES = 2;

/** Publishes 10 lines per device; every client shows exactly the new lines of its device, once, in order. */
async function newLinesArriveOnce(t: Test, stack: LiveStack, { clients, linesOf }: { clients: LiveClient[]; linesOf: (i: number) => number[] }): Promise<void> {
  const before = clients.map((_, i) => linesOf(i).length);
  const publishedBefore = [0, 1].map((d) => stack.published(d).length);
  for (let k = 0; k < 4; k++) await stack.publish(k % DEVICES, 5);
  await eventually(() => clients.every((_, i) => linesOf(i).length >= before[i]! + 10), 20_000).catch(() => undefined);
  clients.forEach((c, i) => {
    const device = i % DEVICES;
    t.same(deliveryReport(linesOf(i).slice(before[i]!), stack.published(device).slice(publishedBefore[device]!)), PERFECT_DELIVERY, `${c.requestId}: the new lines, once, in order`);
  });
}

t.test('Redis restarted empty with streams open: every stream closed within 10 s; clients resume into a new epoch and show new lines', async (t) => {
  const stack = await startLiveStack(t, { pods: 2, devices: DEVICES, ownRedis: true });
  const { clients, told, linesOf } = await watchRoundRobin(stack, DEVICES, 4);
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

  await newLinesArriveOnce(t, stack, { clients, linesOf });
  clients.forEach((c, i) => {
    const device = i % DEVICES;
    const epochAfter = parseCursor(c.cursorOf(stack.entityId(device))!)!.epoch;
    t.not(epochAfter, epochBefore[i], 'a new epoch');
    t.equal(told[i]!.unrecovered[0]?.since.split(':')[0], epochBefore[i], 'told the resume from the old epoch was not recovered');
    t.ok(told[i]!.reset.length > 0, 'told the history was reset');
  });
});

t.test('the owning pod killed and Redis restarted empty before any take-over: its streams go silent, the clients reopen them and show new lines', async (t) => {
  // The double fault: nobody knows the dead pod's streams any more, and the gateway keeps them
  // open. With a probe a second, stream-alive promises an event within 2×1 + 3 + 5 = 10 s.
  const stack = await startLiveStack(t, { pods: 2, devices: DEVICES, ownRedis: true, env: { CONNECTION_PROBE_INTERVAL_SECONDS: '1' } });
  const { clients, told, linesOf } = await watchRoundRobin(stack, DEVICES, 6);
  for (let k = 0; k < 4; k++) await stack.publish(k % DEVICES, 5);
  await eventually(() => clients.every((_, i) => linesOf(i).length === 10), 20_000);
  await new Promise((r) => setTimeout(r, 2_500)); // every stream has heard its first stream-alive
  const silent = clients.map(() => 0);
  clients.forEach((c, i) => c.on('silent', () => (silent[i]! += 1)));

  const victim = await stack.busiestOwner(clients.map((c) => c.requestId));
  const registry = new Redis(stack.redisUrl);
  const owners = await Promise.all(clients.map((c) => registry.hget(registryKeys(stack.fleet.prefix).connection(c.requestId), CONN_FIELDS.ownerPod)));
  registry.disconnect();
  const orphaned = clients.filter((_, i) => owners[i] === victim.id).map((c) => c.requestId);
  victim.child.kill('SIGKILL');
  await victim.exited;
  await stack.restartRedisEmpty(); // well inside the 3 s lease: no take-over can have happened

  await eventually(() => clients.every((c, i) => !orphaned.includes(c.requestId) || silent[i]! > 0), 30_000);
  t.pass(`the ${orphaned.length} stream(s) of the dead pod were noticed silent and reopened`);
  await eventually(() => told.every((r) => r.unrecovered.length > 0) && clients.every((c) => c.state === 'connected'), 30_000);
  t.same(
    clients.filter((_, i) => silent[i]! > 0).map((c) => c.requestId),
    orphaned,
    'only the unserved streams went silent (the live pod closed the ones it served)',
  );

  await newLinesArriveOnce(t, stack, { clients, linesOf });
});
