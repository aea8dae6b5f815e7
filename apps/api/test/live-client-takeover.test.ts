import t from 'tap';
import { runTakeover, startLiveStack } from './live-stack.js';

const DEVICES = 10;
const CONNECTIONS = 100;
const RATE = 1_000; // lines/s over all devices
const SECONDS = 6;

t.test('kill -9 of the owning api pod at 1,000 lines/s to 100 connections over 10 devices: every client shows every line once, in order', async (t) => {
  const stack = await startLiveStack(t, { pods: 2, devices: DEVICES });
  const run = await runTakeover(stack, { connections: CONNECTIONS, devices: DEVICES, rate: RATE, seconds: SECONDS });
  const wrong = run.reports.filter((r) => r.missing > 0 || r.repeated > 0 || r.unexpected > 0 || !r.inOrder);
  t.same(wrong, [], `every client shows every line of its device exactly once, in order (${run.published} lines published)`);
  t.comment(`the clients were told: ${JSON.stringify(run.notices)}`);
  t.comment(
    `killed ${run.killed}; raw duplicates dropped by the clients: ${run.duplicates}; ` +
      `take-over gap (longest pause between lines after the kill): median ${run.pauses[CONNECTIONS / 2]} ms, max ${run.pauses[CONNECTIONS - 1]} ms`,
  );
});
