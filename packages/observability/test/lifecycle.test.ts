import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, createMetrics, Lifecycle } from '../src/index.js';

function lifecycle(timeoutSeconds = 5) {
  const metrics = createMetrics('test');
  const logger = createLogger({ level: 'silent', app: 'test', podId: 'p' });
  return { lc: new Lifecycle(logger, metrics.shuttingDown, timeoutSeconds), metrics };
}

t.test('readiness is the conjunction of every check and of not draining', async (t) => {
  const { lc } = lifecycle();
  let redisUp = true;
  lc.addReadinessCheck('redis', () => redisUp);
  lc.addReadinessCheck('slow', () => new Promise<boolean>(() => {})); // never answers: bounded to 1 s
  const slow = await lc.readiness();
  t.equal(slow.ready, false, 'a check that hangs counts as failed');
  t.equal(slow.checks.slow, false);
  const { lc: lc2 } = lifecycle();
  lc2.addReadinessCheck('redis', () => redisUp);
  t.equal((await lc2.readiness()).ready, true);
  redisUp = false;
  t.same((await lc2.readiness()).checks, { redis: false, accepting_work: true });
});

t.test('shutdown runs hooks in order, flips readiness and the gauge first, and is idempotent', async (t) => {
  const { lc, metrics } = lifecycle();
  const steps: string[] = [];
  lc.addReadinessCheck('ok', () => true);
  lc.onShutdown('stop taking work', async () => {
    steps.push(`stop(ready=${(await lc.readiness()).ready})`);
  });
  lc.onShutdown('close clients', () => {
    steps.push('close');
  });
  const first = lc.shutdown('SIGTERM');
  const second = lc.shutdown('SIGTERM');
  t.equal(await first, 0, 'a clean drain exits 0');
  t.equal(await second, 0, 'a second signal waits for the same drain');
  t.same(steps, ['stop(ready=false)', 'close'], 'each hook once, in order, readiness already 503');
  t.match(await metrics.registry.metrics(), /application_shutting_down\{app="test"\} 1/);
});

t.test('a hook that overruns GRACEFUL_SHUTDOWN_TIMEOUT makes the exit code 1', async (t) => {
  const { lc } = lifecycle(0.2);
  let later = false;
  lc.onShutdown('stuck', () => new Promise<void>(() => {}));
  lc.onShutdown('after', () => {
    later = true;
  });
  t.equal(await lc.shutdown('SIGTERM'), 1);
  t.equal(later, false, 'steps after an overrun are abandoned');
});

t.test('a second SIGTERM during the drain does not kill the process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lifecycle-'));
  const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
  const script = join(dir, 'drain.mjs');
  writeFileSync(
    script,
    `import { createLogger, createMetrics, Lifecycle } from ${JSON.stringify(index)};
const m = createMetrics('x');
const lc = new Lifecycle(createLogger({ level: 'silent', app: 'x', podId: 'p' }), m.shuttingDown, 10);
lc.onShutdown('slow drain', () => new Promise((r) => setTimeout(r, 800)));
lc.onShutdown('last', () => { process.stdout.write('drained\\n'); });
lc.installSignalHandlers();
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);
`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  while (!out.includes('ready')) await once(child.stdout, 'data');
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  t.equal(signal, null, 'not killed by the second signal');
  t.equal(code, 0, 'the first drain completed and exited 0');
  t.match(out, /drained/, 'the last step ran');
});
