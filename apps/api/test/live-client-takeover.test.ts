import t from 'tap';
import { eventually } from '@iotsupport/testkit';
import type { LiveClient } from '@iotsupport/live-client/node';
import { PERFECT_DELIVERY, deliveryReport, publishFor, recordLines, startLiveStack } from './live-stack.js';

const DEVICES = 10;
const CONNECTIONS = 100;
const RATE = 1_000; // lines/s over all devices
const SECONDS = 8;

t.test('kill -9 of the owning api pod at 1,000 lines/s to 100 connections over 10 devices: every client shows every line once, in order', async (t) => {
  const stack = await startLiveStack(t, { pods: 3, devices: DEVICES });
  const clients: LiveClient[] = [];
  const shown: Array<Map<string, number[]>> = [];
  /** Per client, the longest time between two `lines` events after the kill: what a user saw of the take-over. */
  const longestPause: number[] = [];
  let killedAt = Number.POSITIVE_INFINITY;
  for (let i = 0; i < CONNECTIONS; i++) {
    const client = stack.client();
    clients.push(client);
    shown.push(recordLines(client));
    let previous = 0;
    longestPause.push(0);
    client.on('lines', () => {
      const now = Date.now();
      if (now > killedAt) longestPause[i] = Math.max(longestPause[i]!, now - Math.max(previous, killedAt));
      previous = now;
    });
  }
  await Promise.all(clients.map((c, i) => c.watch(stack.deviceId(i % DEVICES))));

  const flow = publishFor(stack, DEVICES, RATE, SECONDS);
  const totalShown = () => shown.reduce((sum, m) => sum + [...m.values()].reduce((s, l) => s + l.length, 0), 0);
  await eventually(() => totalShown() >= RATE * 2 * (CONNECTIONS / DEVICES), 30_000); // ~2 s of lines arrived everywhere
  const owner = await stack.busiestOwner(clients.map((c) => c.requestId));
  killedAt = Date.now();
  owner.child.kill('SIGKILL');
  await owner.exited;
  await flow;

  const complete = (i: number) => (shown[i]!.get(stack.entityId(i % DEVICES)) ?? []).length >= stack.published(i % DEVICES).length;
  await eventually(() => clients.every((_, i) => complete(i)), 45_000).catch(() => undefined); // the assertions below say what is missing
  const reports = clients.map((c, i) => ({ requestId: c.requestId, ...deliveryReport(shown[i]!.get(stack.entityId(i % DEVICES)) ?? [], stack.published(i % DEVICES)) }));
  const wrong = reports.filter(({ requestId, ...report }) => JSON.stringify(report) !== JSON.stringify(PERFECT_DELIVERY));
  t.same(wrong, [], `every client shows every line of its device exactly once, in order (${SECONDS * RATE} lines published)`);
  const duplicates = clients.reduce((sum, c) => sum + c.stats.duplicatesDropped, 0);
  const pauses = [...longestPause].sort((a, b) => a - b);
  t.comment(`killed ${owner.id}; raw duplicates dropped by the clients: ${duplicates}; take-over gap (longest pause between lines after the kill): median ${pauses[CONNECTIONS / 2]} ms, max ${pauses[CONNECTIONS - 1]} ms`);
});
