import t from 'tap';
import { connect } from 'node:net';
import { eventually, listeningUrls } from '@iotsupport/testkit';
import { isolatedApiEnv, startApi } from './api-process.js';

const PRODUCTION = { NODE_ENV: 'production', SECRET_KEY: 'x'.repeat(32), SSE_CALLBACK_SECRET: 'callback-secret', LOG_LEVEL: 'silent' };

t.test('NODE_ENV=production with OIDC off: the api refuses to start, naming OIDC_ENABLED and the way to allow it', async (t) => {
  const api = startApi(PRODUCTION);
  t.equal(await api.exit, 78, 'EX_CONFIG');
  t.match(api.output(), /OIDC_ENABLED must be true when NODE_ENV=production .*ALLOW_UNAUTHENTICATED_API=true/);
});

t.test('OIDC off: the start-up warning says every route is open; a client aborting its request body is no error', async (t) => {
  const api = startApi({
    ...(await isolatedApiEnv(t)),
    LOG_LEVEL: 'debug',
    SHUTDOWN_DRAIN_SECONDS: '0',
  });
  t.teardown(async () => {
    if (api.child.exitCode === null) {
      api.child.kill('SIGTERM');
      await api.exit;
    }
  });
  const publicUrl = new URL((await eventually(() => listeningUrls(api.output()).public, 30_000, 50)) as string);
  t.match(api.output(), /"level":40,.*"msg":"OIDC_ENABLED=false: every public route is open, nobody is authenticated/, 'the warning is logged at start');

  // Half a body, then the client goes away. `100 Continue` tells that the api is reading the body.
  const socket = connect(Number(publicUrl.port), publicUrl.hostname);
  const continued = new Promise<void>((resolve) => socket.on('data', (d: Buffer) => d.toString().includes('100 Continue') && resolve()));
  socket.write('POST /api/devices HTTP/1.1\r\nhost: api\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n');
  await continued;
  socket.write('{"key":"abcd');
  socket.destroy();
  await eventually(() => api.output().includes('request aborted by the client'), 10_000, 20);

  const res = await fetch(new URL('/api/devices', publicUrl));
  t.equal(res.status, 200, 'the process serves on');
  await res.arrayBuffer();
  const errors = api.output().split('\n').filter((line) => /"level":(50|60)/.test(line));
  t.same(errors, [], 'nothing logged as an error');
});
