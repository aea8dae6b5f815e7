import t from 'tap';
import { request } from 'undici';
import { eventually, HEARTBEAT_FRAME, openSse, READY_FRAME, startGatewayStandin } from '../src/index.js';
import { gate, postSend, startCallbackServer, startGateway } from './gateway-helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('health and readiness; without CALLBACK_URL not ready and every stream 503', async (t) => {
  const api = await startCallbackServer(t);
  const gw = await startGateway(t, { callbackUrl: api.url });
  t.same(await (await request(`${gw.url}/healthz`)).body.json(), { status: 'ok' });
  t.equal((await request(`${gw.url}/readyz`)).statusCode, 200);

  const bare = await startGateway(t, { callbackUrl: '' });
  t.equal((await request(`${bare.url}/readyz`)).statusCode, 503);
  const sse = openSse(`${bare.url}/events`);
  t.equal((await sse.response).status, 503);
  await sse.ended;
  t.same(JSON.parse(sse.raw), { error: { message: 'Service not configured', code: 'SERVICE_NOT_CONFIGURED' } });
});

t.test('connect callback: CALLBACK_URL exactly as given, raw url, lower-case joined headers, no auth', async (t) => {
  const api = await startCallbackServer(t);
  const gw = await startGateway(t, { callbackUrl: api.url });
  const sse = openSse(`${gw.url}/events?request_id=abc123&x=%20y`, {
    headers: { Authorization: 'Bearer user-token', cookie: ['access_token=at', 'other=1'], 'X-Forwarded-For': ['10.0.0.1', '10.0.0.2'] },
  });
  t.teardown(() => sse.close());
  await sse.waitFor((m) => m.event === 'ready');
  const [cb] = api.connects();
  t.equal(cb?.url, '/api/sse/callback?secret=s3cr3t&x=1', 'path and query string as configured');
  t.equal(cb?.headers['content-type'], 'application/json');
  t.notOk(cb?.headers.authorization, 'the callback itself carries no auth header');
  t.equal(cb?.body.action, 'connect');
  t.match(cb?.body.token, UUID);
  t.equal(cb?.body.request.url, '/events?request_id=abc123&x=%20y', 'raw path and query, not an absolute URL');
  const headers = cb!.body.request.headers;
  t.equal(headers.authorization, 'Bearer user-token');
  t.equal(headers.cookie, 'access_token=at; other=1', 'repeated cookie joined with "; "');
  t.equal(headers['x-forwarded-for'], '10.0.0.1, 10.0.0.2', 'other repeats joined with ", "');
  t.ok(headers.host);
  t.same(gw.openTokens(), [cb!.body.token]);
});

t.test('2xx: text/event-stream, chunked, uncompressed, ready first with the exact framing', async (t) => {
  const api = await startCallbackServer(t, () => ({ status: 204 }));
  const gw = await startGateway(t, { callbackUrl: api.url });
  const sse = openSse(`${gw.url}/stream`, { headers: { 'accept-encoding': 'gzip, br' } });
  t.teardown(() => sse.close());
  const { status, headers } = await sse.response;
  t.equal(status, 200);
  t.equal(headers['content-type'], 'text/event-stream');
  t.equal(headers['transfer-encoding'], 'chunked');
  t.notOk(headers['content-encoding']);
  await sse.waitFor((m) => m.event === 'ready');
  t.equal(sse.raw, READY_FRAME);
  t.equal(READY_FRAME, 'event: ready\ndata:\n\n');
  t.same(sse.messages, [{ event: 'ready', data: '' }]);
});

t.test('heartbeat comment every interval', async (t) => {
  const api = await startCallbackServer(t);
  const gw = await startGateway(t, { callbackUrl: api.url, heartbeatIntervalMs: 30 });
  const sse = openSse(`${gw.url}/s`);
  t.teardown(() => sse.close());
  await eventually(() => sse.messages.filter((m) => m.comment === 'heartbeat').length >= 2);
  t.equal(HEARTBEAT_FRAME, ': heartbeat\n\n');
  t.ok(sse.raw.startsWith(READY_FRAME + HEARTBEAT_FRAME + HEARTBEAT_FRAME), sse.raw);
});

for (const [status, phrase] of [[400, 'Bad Request'], [401, 'Unauthorized'], [403, 'Forbidden']] as const) {
  t.test(`connect answered ${status}: HTTP 200 with one rejected event, then the end; never a disconnect`, async (t) => {
    const api = await startCallbackServer(t, () => ({ status }));
    const gw = await startGateway(t, { callbackUrl: api.url });
    const sse = openSse(`${gw.url}/events`);
    t.equal((await sse.response).status, 200);
    t.equal((await sse.response).headers['content-type'], 'text/event-stream');
    await sse.ended;
    t.equal(sse.raw, `event: rejected\ndata: {"status":${status},"message":"${phrase}"}\n\n`);
    const token = api.connects()[0]!.body.token;
    t.equal((await postSend(gw.url, { token, event: { data: '{}' } })).status, 404, 'the token is gone');
    t.equal(gw.connection(token)?.outcome, 'rejected');
    t.equal(api.disconnects().length, 0);
  });
}

t.test('the rejected message is our reason phrase', async (t) => {
  const api = await startCallbackServer(t, () => ({ status: 401, statusMessage: 'Token Expired' }));
  const gw = await startGateway(t, { callbackUrl: api.url });
  const sse = openSse(`${gw.url}/events`);
  await sse.ended;
  t.equal(sse.raw, 'event: rejected\ndata: {"status":401,"message":"Token Expired"}\n\n');
});

t.test('other status: same status with a JSON error; timeout 504; API down 503', async (t) => {
  const api = await startCallbackServer(t, () => ({ status: 500 }));
  const gw = await startGateway(t, { callbackUrl: api.url, callbackTimeoutMs: 150 });
  const failed = openSse(`${gw.url}/a`);
  t.equal((await failed.response).status, 500);
  await failed.ended;
  t.same(JSON.parse(failed.raw), { error: { message: 'Backend returned 500', code: 'BACKEND_ERROR' } });

  const held = gate<{ status: number }>();
  api.answer = () => held.promise;
  const slow = openSse(`${gw.url}/b`);
  t.equal((await slow.response).status, 504);
  await slow.ended;
  t.same(JSON.parse(slow.raw), { error: { message: 'Gateway timeout', code: 'GATEWAY_TIMEOUT' } });
  held.open({ status: 200 });

  const down = await startGateway(t, { callbackUrl: 'http://127.0.0.1:1/api/sse/callback' });
  const refused = openSse(`${down.url}/c`);
  t.equal((await refused.response).status, 503);
  await refused.ended;
  t.same(JSON.parse(refused.raw), { error: { message: 'Backend unavailable', code: 'BACKEND_UNAVAILABLE' } });
  t.equal(api.disconnects().length, 0, 'no disconnect after a failed connect');
});

t.test('sends during connect are buffered and written before ready', async (t) => {
  const held = gate<{ status: number }>();
  const api = await startCallbackServer(t, () => held.promise);
  const gw = await startGateway(t, { callbackUrl: api.url });
  const sse = openSse(`${gw.url}/events`);
  t.teardown(() => sse.close());
  await eventually(() => api.connects().length === 1);
  const token = api.connects()[0]!.body.token;
  const first = await postSend(gw.url, { token, event: { name: 'device-logs', data: '{"a":1}' } });
  t.equal(first.status, 200);
  t.same(first.json(), { status: 'buffered' });
  t.same((await postSend(gw.url, { token, event: { name: 'rotation', data: '[2]' } })).json(), { status: 'buffered' });
  held.open({ status: 200 });
  await sse.waitFor((m) => m.event === 'ready');
  t.equal(sse.raw, 'data: {"type":"device-logs","payload":{"a":1}}\n\ndata: {"type":"rotation","payload":[2]}\n\n' + READY_FRAME);
  t.same(gw.connection(token)?.events, [{ name: 'device-logs', data: '{"a":1}' }, { name: 'rotation', data: '[2]' }]);
});

t.test('a browser that leaves during connect never gets a disconnect callback', async (t) => {
  const held = gate<{ status: number }>();
  const api = await startCallbackServer(t, (cb) => (cb.body.action === 'connect' && api.connects().length === 1 ? held.promise : { status: 200 }));
  const gw = await startGateway(t, { callbackUrl: api.url });
  const early = openSse(`${gw.url}/early`);
  await eventually(() => api.connects().length === 1);
  const token = api.connects()[0]!.body.token;
  early.close();
  await eventually(() => gw.connection(token)?.outcome === 'left_during_connect');
  t.equal((await postSend(gw.url, { token, event: { data: '{}' } })).status, 404, 'forgotten at once');
  held.open({ status: 200 });
  await eventually(() => gw.callbacks()[0]?.outcome !== undefined);

  // A later connection that does get its disconnect shows the first one's never came.
  const later = openSse(`${gw.url}/later`);
  await later.waitFor((m) => m.event === 'ready');
  later.close();
  await eventually(() => api.disconnects().length === 1);
  t.not(api.disconnects()[0]?.body.token, token);
  t.same(gw.openTokens(), []);
});

t.test('crash drops every stream with no callback; restart knows no tokens', async (t) => {
  const api = await startCallbackServer(t);
  const gw = await startGatewayStandin({ callbackUrl: api.url });
  t.teardown(() => gw.stop());
  const sse = openSse(`${gw.url}/events`);
  await sse.waitFor((m) => m.event === 'ready');
  const token = api.connects()[0]!.body.token;
  await gw.crash();
  await sse.ended;
  t.equal(gw.connection(token)?.outcome, 'crashed');
  await t.rejects(request(`${gw.url}/healthz`), 'the port is closed');
  await gw.restart();
  t.equal((await request(`${gw.url}/healthz`)).statusCode, 200);
  t.equal((await postSend(gw.url, { token, event: { data: '{}' } })).status, 404);
  t.equal(api.disconnects().length, 0);
});
