import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('./fixtures/crashing-process.js', import.meta.url));

async function crash(how: 'throw' | 'reject') {
  const child = spawn(process.execPath, [FIXTURE, how], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string; stack: string }; origin?: string; step?: string });
  return { code, lines, stderr };
}

for (const [how, origin, message] of [
  ['throw', 'uncaughtException', 'boom from a timer'],
  ['reject', 'unhandledRejection', 'boom from a promise'],
] as const) {
  t.test(`${origin}: logged once as JSON with the error, ordered drain, exit non-zero`, async (t) => {
    const { code, lines, stderr } = await crash(how);
    t.not(code, 0, 'the process exits non-zero');
    t.equal(code, 1);
    const fatal = lines.filter((l) => l.level === 60);
    t.equal(fatal.length, 1, 'one fatal line');
    t.equal(fatal[0]?.origin, origin);
    t.equal(fatal[0]?.err?.message, message, 'the error is in the line');
    t.match(fatal[0]?.err?.stack, /crashing-process/, 'with its stack');
    t.equal(stderr, '', "Node's own crash print does not repeat it");
    const order = lines.map((l) => l.step ?? l.msg);
    const steps = ['shutting down', 'stop taking work', 'clients closed', 'close clients', 'shutdown complete'];
    const at = steps.map((s) => order.indexOf(s));
    t.ok(at.every((i) => i > order.indexOf(fatal[0]!.msg)), 'the drain runs after the crash is logged', { order });
    t.same([...at].sort((a, b) => a - b), at, 'in the order the steps were added', { order });
  });
}
