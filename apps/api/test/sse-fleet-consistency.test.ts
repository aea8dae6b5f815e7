import t from 'tap';
import { eventually, openSse, type SseClient } from '@iotsupport/testkit';
import { startFleet, type Fleet } from './sse-fleet.js';

t.test('connect via pod A, subscribe via pod B, disconnect via pod C: consistent at every step', async (t) => {
  const fleet = await startFleet(t, { pods: 3, oidc: true });
  const [a, b, c] = fleet.pods;
  const [dev0, dev1] = fleet.devices.entity;
  const alice = { authorization: `Bearer ${fleet.issuer!.token({ sub: 'alice' })}` };

  t.equal((await fleet.callback(a!, fleet.connectBody('tok-1', 'r1', alice))).statusCode, 200);
  let snap = await fleet.consistent();
  t.same(Object.keys(snap.connections), ['r1']);
  t.match(snap.connections.r1, { token: 'tok-1', subject: 'alice', received_by: a!.config.POD_ID, gateway: fleet.gateway.url, url: '/events?request_id=r1' });
  t.same(snap.tokens, { 'tok-1': 'r1' });

  t.equal((await fleet.deviceLogs(b!, 'subscribe', { request_id: 'r1', device_id: dev0 }, alice)).statusCode, 200);
  t.equal((await fleet.deviceLogs(c!, 'subscribe', { request_id: 'r1', device_id: dev1 }, alice)).statusCode, 200);
  snap = await fleet.consistent();
  t.same(snap.devices, { r1: { [dev0!]: 'sensor.0', [dev1!]: 'sensor.1' } });
  t.same(snap.watchers, { 'sensor.0': ['r1'], 'sensor.1': ['r1'] });
  t.equal(snap.subscriptionCount, 2);

  // every pod reports the same fleet-wide gauges
  for (const pod of fleet.pods) {
    const metrics = (await pod.internalServer.inject({ method: 'GET', url: '/metrics' })).body;
    t.match(metrics, /^sse_gateway_active_connections\{[^}]*\} 1$/m, `${pod.config.POD_ID} sees 1 connection`);
    t.match(metrics, /^sse_device_log_subscriptions_active\{[^}]*\} 2$/m, `${pod.config.POD_ID} sees 2 subscriptions`);
  }

  t.equal((await fleet.callback(c!, { action: 'disconnect', reason: 'client_closed', token: 'tok-1', request: { url: '/events?request_id=r1', headers: {} } })).statusCode, 200);
  snap = await fleet.consistent();
  t.same(snap.connections, {});
  t.same(snap.devices, {});
  t.same(snap.watchers, {});
  t.same(snap.tokens, {});
  t.equal(snap.subscriptionCount, 0);
  const metrics = (await a!.internalServer.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /^sse_gateway_connections_total\{action="connect"[^}]*\} 1$/m);
  t.match(metrics, /^sse_identity_binding_total\{status="bound"[^}]*\} 1$/m);
});

/** A browser on the gateway stand-in for request_id, and the token the gateway gave it. */
async function browser(t: Tap, fleet: Fleet, requestId: string, sub: string): Promise<{ sse: SseClient; token: string }> {
  const sse = openSse(`${fleet.gateway.url}/events?request_id=${requestId}`, { headers: { cookie: `access_token=${fleet.issuer!.token({ sub })}` } });
  t.teardown(() => sse.close());
  await sse.waitFor((m) => m.event === 'ready');
  const open = fleet.gateway.connections().filter((c) => c.url === `/events?request_id=${requestId}` && c.state === 'open');
  return { sse, token: open[open.length - 1]!.token };
}
type Tap = { teardown(fn: () => unknown): void };

t.test('replacement through the gateway: same subject keeps subscriptions, another subject drops them, stale disconnects change nothing', async (t) => {
  const fleet = await startFleet(t, { pods: 3, oidc: true });
  const [a, b, c] = fleet.pods;
  const [dev0] = fleet.devices.entity;
  const alice = { authorization: `Bearer ${fleet.issuer!.token({ sub: 'alice' })}` };

  const first = await browser(t, fleet, 'tab', 'alice');
  t.equal((await fleet.deviceLogs(a!, 'subscribe', { request_id: 'tab', device_id: dev0 }, alice)).statusCode, 200);

  const second = await browser(t, fleet, 'tab', 'alice');
  await first.sse.ended; // the old stream was closed through the gateway
  let snap = await fleet.consistent();
  t.equal(snap.connections.tab?.token, second.token, 'the new token is current');
  t.same(snap.tokens, { [second.token]: 'tab' }, 'the old token is forgotten');
  t.same(snap.devices.tab, { [dev0!]: 'sensor.0' }, 'same subject: the subscription carried over');
  t.same(snap.watchers['sensor.0'], ['tab']);
  // the gateway's own disconnect callback for the closed stream was answered and ignored
  await eventually(() => fleet.gateway.callbacks().some((cb) => cb.payload.action === 'disconnect' && cb.payload.token === first.token && cb.outcome));

  // a stale disconnect for the first token, through any pod, changes nothing
  const before = await fleet.consistent();
  t.equal((await fleet.callback(b!, { action: 'disconnect', reason: 'client_closed', token: first.token, request: { url: '/events?request_id=tab', headers: {} } })).statusCode, 200);
  t.same(await fleet.consistent(), before, 'stale disconnect: identical state');

  const bob = await browser(t, fleet, 'tab', 'bob');
  await second.sse.ended;
  snap = await fleet.consistent();
  t.equal(snap.connections.tab?.subject, 'bob');
  t.equal(snap.connections.tab?.token, bob.token);
  t.notOk(snap.devices.tab, 'another subject: subscriptions dropped');
  t.same(snap.watchers, {});
  t.equal(snap.subscriptionCount, 0);
  const aliceNow = await fleet.deviceLogs(c!, 'subscribe', { request_id: 'tab', device_id: dev0 }, alice);
  t.equal(aliceNow.json().code, 'IDENTITY_MISMATCH', "alice can no longer use bob's connection");

  // the browser leaves: the gateway's disconnect removes everything
  bob.sse.close();
  await eventually(async () => Object.keys((await fleet.consistent()).connections).length === 0);
  t.same((await fleet.consistent()).tokens, {});
});
