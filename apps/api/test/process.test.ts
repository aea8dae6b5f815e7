import t from 'tap';
import { eventually, listeningUrls } from '@iotsupport/testkit';
import { isolatedApiEnv, startApi } from './api-process.js';

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0; // connection refused: the listener is closed
  }
}

t.test('SIGTERM: readiness turns 503 first, requests are still served while draining, exit 0', async (t) => {
  // Port 0: each listener's address is read from its start-up log line (no port to lose meanwhile).
  const api = startApi({
    ...(await isolatedApiEnv(t, { seed: true })),
    // Long enough that the request sent after readiness turned 503 lands before the listener closes.
    SHUTDOWN_DRAIN_SECONDS: '5',
    GRACEFUL_SHUTDOWN_TIMEOUT: '10',
    LOG_LEVEL: 'info',
  });
  t.teardown(async () => {
    if (api.child.exitCode === null) api.child.kill('SIGKILL');
    await api.exit;
  });
  const urls = await eventually(() => {
    const { public: publicUrl, internal } = listeningUrls(api.output());
    return publicUrl && internal ? { publicUrl, internal } : undefined;
  }, 30_000, 50);
  const readyz = `${urls!.internal}/health/readyz`;
  const devices = `${urls!.publicUrl}/api/devices`;

  await eventually(async () => (await status(readyz)) === 200, 30_000, 100);
  const listed = (await (await fetch(devices)).json()) as Array<{ key: string }>;
  t.same(listed.map((d) => d.key), ['demo0001', 'demo0002', 'demo0003'], 'the public listener serves the seeded devices');

  api.child.kill('SIGTERM');
  await eventually(async () => (await status(readyz)) === 503, 10_000, 20);
  t.pass('readiness is 503 after SIGTERM');
  t.equal(api.child.exitCode, null, 'the process is still running while readiness says 503');
  t.equal(await status(devices), 200, 'requests arriving during the drain are still served');

  const code = await api.exit;
  t.equal(code, 0, 'exit code 0 after a clean drain');
  // Order by each line's own timestamp: stdout chunks can reach the pipe reordered under load,
  // while the `time` field records when each step really finished (ties keep output order).
  const log = api
    .output()
    .split('\n')
    .map((line, i) => ({ line, i, time: Date.parse((/"time":"([^"]+)"/.exec(line) ?? [])[1] ?? '') }))
    .filter((l) => !Number.isNaN(l.time))
    .sort((a, b) => a.time - b.time || a.i - b.i)
    .map((l) => l.line)
    .join('\n');
  const order = ['"shutting down"', 'drain (readiness 503, still serving)', 'close public listener', 'close internal listener', 'close clients', 'shutdown complete'];
  const positions = order.map((s) => log.indexOf(s));
  t.ok(positions.every((p) => p >= 0), 'every shutdown step is logged');
  t.same([...positions].sort((a, b) => a - b), positions, 'in order: drain, listeners, clients', { log });
});

t.test('a bad environment variable stops the start with a message naming it', async (t) => {
  const api = startApi({ PORT: 'eighty', LOG_LEVEL: 'silent' });
  const code = await api.exit;
  t.not(code, 0, 'non-zero exit');
  t.match(api.output(), /PORT/, 'names the variable');

  const prod = startApi({ NODE_ENV: 'production', SECRET_KEY: 'x'.repeat(32) });
  t.not(await prod.exit, 0);
  t.match(prod.output(), /SSE_CALLBACK_SECRET/, 'production refuses to start without the callback secret');
});
