import t, { type Test } from 'tap';
import { eventually, openSse, READY_FRAME, SEND_BODY_LIMIT, type SseClient } from '../src/index.js';
import { gate, postSend, startCallbackServer, startGateway, type Answer, type ReceivedCallback } from './gateway-helpers.js';

/** A gateway with one open stream; returns its token. */
async function openStream(t: Test, answer?: (cb: ReceivedCallback) => Answer) {
  const api = await startCallbackServer(t, answer);
  const gw = await startGateway(t, { callbackUrl: api.url });
  const sse: SseClient = openSse(`${gw.url}/events?request_id=r1`, { headers: { cookie: 'access_token=abc' } });
  t.teardown(() => sse.close());
  await sse.waitFor((m) => m.event === 'ready');
  return { api, gw, sse, token: api.connects()[0]!.body.token };
}

t.test('a named event arrives in an unnamed envelope with data pasted raw; unnamed as plain data lines', async (t) => {
  const { gw, sse, token } = await openStream(t);
  const sent = await postSend(gw.url, { token, event: { name: 'device-logs', data: '{"a":1}' }, close: false });
  t.equal(sent.status, 200);
  t.match(sent.contentType, /^application\/json/);
  t.same(sent.json(), { status: 'ok' });
  await postSend(gw.url, { token, event: { data: 'line1\nline2' } });
  await postSend(gw.url, { token, event: { name: 'broken', data: '{"a":' } });
  await postSend(gw.url, { token });
  await sse.waitFor((m) => m.data === '{"type":"broken","payload":{"a":}');
  t.equal(
    sse.raw,
    READY_FRAME + 'data: {"type":"device-logs","payload":{"a":1}}\n\n' + 'data: line1\ndata: line2\n\n' + 'data: {"type":"broken","payload":{"a":}\n\n',
    'invalid JSON data reaches the browser as broken JSON, exactly as the real gateway would',
  );
  t.same(sse.envelopes(), [{ type: 'device-logs', payload: { a: 1 } }]);
  t.equal(gw.sendCount, 4);
  t.same(gw.connection(token)?.events.map((e) => e.name), ['device-logs', undefined, 'broken']);
});

t.test('many sends arrive in order', async (t) => {
  const { gw, sse, token } = await openStream(t);
  for (let i = 0; i < 50; i++) await postSend(gw.url, { token, event: { name: 'n', data: String(i) } });
  const envelopes = await sse.waitForEnvelopes(50);
  t.same(envelopes.map((e) => e.payload), Array.from({ length: 50 }, (_, i) => i));
});

t.test('validation: the gateway\'s codes and messages, in its order', async (t) => {
  const { gw, token } = await openStream(t);
  const cases: [unknown, number, string][] = [
    [{}, 400, 'INVALID_TOKEN_MISSING'],
    [{ token: 42 }, 400, 'INVALID_TOKEN_MISSING'],
    [{ token: '' }, 400, 'INVALID_TOKEN_MISSING'],
    [[], 400, 'INVALID_TOKEN_MISSING'],
    [{ token, event: 'x' }, 400, 'INVALID_EVENT_TYPE'],
    [{ token, event: null }, 400, 'INVALID_EVENT_TYPE'],
    [{ token, event: {} }, 400, 'INVALID_EVENT_DATA_MISSING'],
    [{ token, event: { data: 1 } }, 400, 'INVALID_EVENT_DATA_MISSING'],
    [{ token, event: { name: 5, data: '{}' } }, 400, 'INVALID_EVENT_NAME_TYPE'],
    [{ token, event: { data: '{}' }, close: 'yes' }, 400, 'INVALID_CLOSE_TYPE'],
    [{ token: 'no-such-token', event: 'x' }, 400, 'INVALID_EVENT_TYPE'],
    [{ token: '00000000-0000-4000-8000-000000000000', event: { data: '{}' } }, 404, 'TOKEN_NOT_FOUND'],
  ];
  for (const [body, status, code] of cases) {
    const res = await postSend(gw.url, body);
    t.equal(res.status, status, JSON.stringify(body));
    t.match(res.json(), { error: { code, message: String } }, JSON.stringify(body));
  }
  t.same((await postSend(gw.url, { token: 'x', event: { data: '{}' } })).json(), { error: { message: 'Token not found', code: 'TOKEN_NOT_FOUND' } });
  t.same((await postSend(gw.url, {})).json(), {
    error: { message: 'Invalid request: token is required and must be a string', code: 'INVALID_TOKEN_MISSING' },
  });
  t.same(gw.connection(token)?.events, [], 'nothing invalid was written');
});

t.test('malformed JSON → 400 HTML page; missing JSON content type → 500 HTML page', async (t) => {
  const { gw, token } = await openStream(t);
  const malformed = await postSend(gw.url, '{"token":', 'application/json');
  t.equal(malformed.status, 400);
  t.match(malformed.contentType, /^text\/html/);
  t.match(malformed.text, /<pre>Bad Request<\/pre>/);
  const scalar = await postSend(gw.url, '"just a string"', 'application/json');
  t.equal(scalar.status, 400, 'only objects and arrays are JSON bodies');
  for (const contentType of [null, 'text/plain', 'application/vnd.api+json']) {
    const res = await postSend(gw.url, JSON.stringify({ token, event: { data: '{}' } }), contentType);
    t.equal(res.status, 500, String(contentType));
    t.match(res.contentType, /^text\/html/);
    t.match(res.text, /<pre>Internal Server Error<\/pre>/);
  }
  t.same(gw.connection(token)?.events, []);
});

t.test('413 above 100 kB, accepted at exactly 100 kB', async (t) => {
  const { gw, sse, token } = await openStream(t);
  const bodyOfSize = (size: number): string => {
    const empty = JSON.stringify({ token, event: { name: 'big', data: '""' } });
    const padded = JSON.stringify({ token, event: { name: 'big', data: `"${'x'.repeat(size - empty.length)}"` } });
    t.equal(Buffer.byteLength(padded), size);
    return padded;
  };
  t.equal(SEND_BODY_LIMIT, 102_400);
  const atLimit = await postSend(gw.url, bodyOfSize(SEND_BODY_LIMIT));
  t.equal(atLimit.status, 200);
  const over = await postSend(gw.url, bodyOfSize(SEND_BODY_LIMIT + 1));
  t.equal(over.status, 413);
  t.match(over.contentType, /^text\/html/);
  t.match(over.text, /Payload Too Large/);
  await sse.waitForEnvelopes(1);
  t.equal(gw.connection(token)?.events.length, 1, 'only the one at the limit was written');
});

t.test('close: true writes the event, waits for our disconnect answer, ends the stream, then answers 200', async (t) => {
  const held = gate<{ status: number }>();
  const { api, gw, sse, token } = await openStream(t, (cb) => (cb.body.action === 'disconnect' ? held.promise : { status: 200 }));
  let answered = false;
  const closing = postSend(gw.url, { token, event: { name: 'bye', data: '{"reason":"rotated"}' }, close: true }).then((r) => {
    answered = true;
    return r;
  });
  await eventually(() => api.disconnects().length === 1);
  const [disconnect] = api.disconnects();
  t.same(disconnect?.body.reason, 'server_closed');
  t.equal(disconnect?.body.token, token);
  t.same(disconnect?.body.request, api.connects()[0]?.body.request, 'same url and headers as the connect');
  t.equal((await postSend(gw.url, { token, event: { data: '{}' } })).status, 404, 'the token is removed before the callback');
  t.notOk(answered, 'the send is not answered while our disconnect callback is pending');
  t.notOk(sse.isEnded, 'the stream is not ended yet either');
  held.open({ status: 200 });
  const res = await closing;
  t.equal(res.status, 200);
  t.same(res.json(), { status: 'ok' });
  await sse.ended;
  t.ok(sse.raw.endsWith('data: {"type":"bye","payload":{"reason":"rotated"}}\n\n'));
  t.equal(gw.connection(token)?.outcome, 'server_closed');
});

t.test('a buffered close ends the stream before ready', async (t) => {
  const held = gate<{ status: number }>();
  const api = await startCallbackServer(t, (cb) => (cb.body.action === 'connect' ? held.promise : { status: 200 }));
  const gw = await startGateway(t, { callbackUrl: api.url });
  const sse = openSse(`${gw.url}/events`);
  await eventually(() => api.connects().length === 1);
  const token = api.connects()[0]!.body.token;
  t.same((await postSend(gw.url, { token, event: { name: 'bye', data: '1' }, close: true })).json(), { status: 'buffered' });
  held.open({ status: 200 });
  await sse.ended;
  t.equal(sse.raw, 'data: {"type":"bye","payload":1}\n\n');
  await eventually(() => api.disconnects().length === 1);
  t.equal(api.disconnects()[0]?.body.reason, 'server_closed');
});

t.test('the browser leaving → disconnect client_closed; disconnectClient does the same on demand', async (t) => {
  const { api, gw, sse, token } = await openStream(t);
  sse.close();
  await eventually(() => api.disconnects().length === 1);
  t.match(api.disconnects()[0]?.body, { action: 'disconnect', reason: 'client_closed', token, request: { url: '/events?request_id=r1' } });
  t.equal((await postSend(gw.url, { token, event: { data: '{}' } })).status, 404);

  const second = openSse(`${gw.url}/again`);
  await second.waitFor((m) => m.event === 'ready');
  const token2 = api.connects()[1]!.body.token;
  await gw.disconnectClient(token2);
  t.equal(api.disconnects().length, 2, 'resolved after the disconnect callback was answered');
  t.equal(api.disconnects()[1]?.body.reason, 'client_closed');
  await second.ended;
  t.same(gw.openTokens(), []);
});

t.test('records are capped at historyLimit (a long make dev stream does not grow forever)', async (t) => {
  const api = await startCallbackServer(t);
  const gw = await startGateway(t, { callbackUrl: api.url, historyLimit: 3 });
  const sse = openSse(`${gw.url}/events`);
  t.teardown(() => sse.close());
  await sse.waitFor((m) => m.event === 'ready');
  const token = gw.openTokens()[0]!;
  for (let i = 0; i < 5; i++) await postSend(gw.url, { token, event: { name: 'n', data: String(i) } });
  await sse.waitForEnvelopes(5);
  t.same(gw.connection(token)?.events.map((e) => e.data), ['2', '3', '4'], 'the latest events are kept');
  t.equal(gw.connection(token)?.frames.length, 3);
  t.equal(gw.sends().length, 3);
  t.equal(gw.sendCount, 5, 'the count is not capped');
});

t.test('failSend: sends of a failing token are answered 503 and not written, other tokens unaffected, until it heals', async (t) => {
  const failing = new Set<string>();
  const api = await startCallbackServer(t);
  const gw = await startGateway(t, { callbackUrl: api.url, failSend: (token) => failing.has(token) });
  const streams = [openSse(`${gw.url}/a`), openSse(`${gw.url}/b`)];
  t.teardown(() => streams.forEach((s) => s.close()));
  for (const s of streams) await s.waitFor((m) => m.event === 'ready');
  const [a, b] = api.connects().map((c) => c.body.token) as [string, string];
  failing.add(a);

  const refused = await postSend(gw.url, { token: a, event: { name: 'n', data: '1' } });
  t.equal(refused.status, 503);
  t.match(refused.contentType, /^text\/html/);
  t.equal((await postSend(gw.url, { token: b, event: { name: 'n', data: '2' } })).status, 200, 'another token is served');
  t.equal((await postSend(gw.url, { token: a, event: 'x' })).status, 503, 'refused before any check of the body');
  failing.delete(a);
  t.equal((await postSend(gw.url, { token: a, event: { name: 'n', data: '3' } })).status, 200, 'healed');

  t.same(gw.connection(a)?.events.map((e) => e.data), ['3'], 'nothing refused was written');
  t.same(gw.connection(b)?.events.map((e) => e.data), ['2']);
  t.same(gw.sends().map((s) => s.status), [503, 200, 503, 200], 'refusals are in the send history');
});
