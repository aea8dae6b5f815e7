/**
 * Lines lost and repeated on `kill -9` of the owning api pod, as the client module sees them
 * (`node bench/dist/live-client/takeover-bench.js [--connections 100 --devices 10 --rate 1000
 * --seconds 10 --kill-after 3]` after `make build`). The whole stack as processes (apps/api's
 * live-stack.ts: 3 api pods, ingest, the gateway stand-in; shared Redis, Mosquitto, PostgreSQL).
 * Prints: lines lost after the module's dedupe (goal 0), raw repeats it dropped, the take-over gap.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '100' },
    devices: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    'kill-after': { type: 'string', default: '3' },
    // The real SSE Gateway (pvginkel/SSEGateway, built outside the repository): its dist/index.js.
    'gateway-main': { type: 'string' },
  },
});
type StackModule = typeof import('../../apps/api/dist/test/live-stack.js');
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const { startLiveStack, runTakeover } = (await import(here('../../../apps/api/dist/test/live-stack.js'))) as StackModule;

const teardown: Array<() => unknown> = [];
try {
  const connections = Number(args.connections);
  const devices = Number(args.devices);
  const stack = await startLiveStack({ teardown: (fn) => teardown.push(fn) }, { pods: 3, devices, ...(args['gateway-main'] ? { gatewayMain: args['gateway-main'] } : {}) });
  const run = await runTakeover(stack, { connections, devices, rate: Number(args.rate), seconds: Number(args.seconds), killAfterSeconds: Number(args['kill-after']) });
  const lost = run.reports.reduce((sum, r) => sum + r.missing, 0);
  const shownTwice = run.reports.reduce((sum, r) => sum + r.repeated, 0);
  const outOfOrder = run.reports.filter((r) => !r.inOrder).length;
  const deliveries = (run.published * connections) / devices;
  const gatewayName = args['gateway-main'] ? `the real SSE Gateway (${args['gateway-main']})` : 'the gateway stand-in';
  console.log(`take-over: ${connections} connections over ${devices} devices, ${args.rate} lines/s for ${args.seconds} s, killed ${run.killed} (kill -9), through ${gatewayName}`);
  console.log(`  line deliveries expected   ${deliveries}`);
  console.log(`  lost after dedupe          ${lost}`);
  console.log(`  shown twice after dedupe   ${shownTwice} (clients out of order: ${outOfOrder})`);
  console.log(`  raw repeats dropped        ${run.duplicates} (${((run.duplicates / deliveries) * 100).toFixed(2)} % of deliveries)`);
  console.log(`  clients were told          ${JSON.stringify(run.notices)}`);
  console.log(`  take-over gap per client   median ${run.pauses[Math.floor(connections / 2)]} ms, max ${run.pauses[connections - 1]} ms`);
} finally {
  for (const fn of teardown.reverse()) await fn();
}
