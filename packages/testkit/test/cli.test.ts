import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { eventually, openSse } from '../src/index.js';
import { startCallbackServer } from './gateway-helpers.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Starts the CLI and resolves with its start line once it printed one. */
async function run(t: Test, args: string[]): Promise<{ child: ChildProcess; line: string; url: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const line = await eventually(() => (out.includes('\n') ? out.split('\n')[0] : undefined));
  return { child, line: line!, url: /listening on (http:\/\/\S+?),? /.exec(`${line} `)?.[1] ?? '' };
}

t.test('es: one start line, answers as Elasticsearch, exits 0 on SIGTERM', async (t) => {
  const { child, line, url } = await run(t, ['es', '--port', '0']);
  t.match(line, /^elasticsearch stand-in listening on http:\/\/127\.0\.0\.1:\d+$/);
  const res = await request(url);
  t.equal(res.statusCode, 200);
  t.equal(res.headers['x-elastic-product'], 'Elasticsearch');
  await res.body.dump();
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
});

t.test('gateway: calls the given callback URL, exits 0 on SIGTERM', async (t) => {
  const api = await startCallbackServer(t);
  const { child, line, url } = await run(t, ['gateway', '--port', '0', '--callback-url', api.url, '--heartbeat-seconds', '1']);
  t.match(line, /^sse gateway stand-in listening on http:\/\/127\.0\.0\.1:\d+, callbacks to /);
  const sse = openSse(`${url}/events?request_id=cli`);
  await sse.waitFor((m) => m.event === 'ready');
  t.equal(api.connects()[0]?.url, '/api/sse/callback?secret=s3cr3t&x=1');
  t.equal(api.connects()[0]?.body.request.url, '/events?request_id=cli');
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
  await sse.ended;
  t.equal(api.disconnects().length, 0, 'like the real gateway, nothing is sent at shutdown');
});

t.test('bad invocations exit non-zero with the usage', async (t) => {
  for (const args of [['nope'], ['gateway', '--port', '0'], ['es', '--port', 'abc']]) {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CALLBACK_URL: '' } });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const [code] = await once(child, 'exit');
    t.equal(code, 2, args.join(' '));
    t.match(err, /usage:/);
  }
});
