import t from 'tap';
import { eventually, openSse } from '@iotsupport/testkit';
import { startFleet, type Fleet } from './sse-fleet.js';

/**
 * No orphans (docs/registry.md): state nobody can reach is gone within
 *   expired binding: binding end + S;
 *   gateway lost it (404): last confirmation + 2P + S + two probes;
 *   gateway unreachable for good: last confirmation + 4P + S + two probes,
 * with S = REGISTRY_SWEEP_INTERVAL_SECONDS, P = CONNECTION_PROBE_INTERVAL_SECONDS. Here S = P = 1 s
 * and a probe takes at most 2 × GATEWAY_SEND_TIMEOUT_MS (2 s, one retry) + backoff: generous, so a
 * loaded event loop is not mistaken for an unreachable gateway. The deadlines add 3 s for this
 * shared, slow test machine.
 */
const ENV = { REGISTRY_SWEEP_INTERVAL_SECONDS: '1', CONNECTION_PROBE_INTERVAL_SECONDS: '1', GATEWAY_SEND_TIMEOUT_MS: '2000', GATEWAY_SEND_RETRIES: '1' };
const PROBE_MS = 2 * 2_000 + 100;
const GONE_BOUND_MS = 2_000 + 1_000 + 2 * PROBE_MS;
const UNREACHABLE_BOUND_MS = 4_000 + 1_000 + 2 * PROBE_MS;
const SLACK_MS = 3_000;

async function openBrowsers(t: { teardown(fn: () => unknown): void }, fleet: Fleet, ids: string[]) {
  const browsers = ids.map((id) => openSse(`${fleet.gateway.url}/events?request_id=${id}`));
  t.teardown(() => browsers.forEach((b) => b.close()));
  await Promise.all(browsers.map((b) => b.waitFor((m) => m.event === 'ready')));
  for (const [i, id] of ids.entries()) {
    const res = await fleet.deviceLogs(fleet.pods[i % fleet.pods.length]!, 'subscribe', { request_id: id, device_id: fleet.devices.entity[i % 3] });
    if (res.statusCode !== 200) throw new Error(`subscribe ${id}: ${res.body}`);
  }
  return browsers;
}

/**
 * The registry read while sweepers and probes run: the snapshot is SCAN then one read per key, so
 * a transition landing between two reads can look like a broken invariant. Retried until a read
 * sees a settled state (a real violation persists and fails).
 */
const settled = (fleet: Fleet) => eventually(() => fleet.consistent(), 5_000, 50);

const empty = async (fleet: Fleet) => {
  const snap = await fleet.consistent();
  return Object.keys(snap.connections).length === 0 && snap.subscriptionCount === 0 && Object.keys(snap.watchers).length === 0;
};

t.test('a crashed gateway that comes back knows no tokens: every connection it held is cleaned up, no callback needed', async (t) => {
  const fleet = await startFleet(t, { pods: 3, env: ENV });
  await openBrowsers(t, fleet, ['a1', 'a2', 'a3']);
  await fleet.gateway.crash();
  await fleet.gateway.restart();
  await eventually(() => empty(fleet), GONE_BOUND_MS + SLACK_MS, 100);
  t.pass('all connection, binding and subscription state is gone');
});

t.test('a gateway that never comes back: its connections go once unreachable for four probe intervals', async (t) => {
  const fleet = await startFleet(t, { pods: 2, env: ENV });
  await openBrowsers(t, fleet, ['b1', 'b2']);
  await fleet.gateway.crash();
  await eventually(() => empty(fleet), UNREACHABLE_BOUND_MS + SLACK_MS, 100);
  t.pass('unreachable for 4 probe intervals: removed');
});

t.test('a connect never followed by a disconnect (the browser left during the callback) is cleaned up; live ones stay', async (t) => {
  const fleet = await startFleet(t, { pods: 3, env: ENV });
  await openBrowsers(t, fleet, ['live1', 'live2']);
  // the gateway never registered this token: our callback answered after the browser left
  await fleet.callback(fleet.pods[1]!, fleet.connectBody('ghost-token', 'ghost'));
  await fleet.deviceLogs(fleet.pods[2]!, 'subscribe', { request_id: 'ghost', device_id: fleet.devices.entity[0] });
  await eventually(async () => !(await fleet.consistent()).connections.ghost, GONE_BOUND_MS + SLACK_MS, 100);
  // a few more sweep rounds: live connections are probed, confirmed and kept
  await new Promise((r) => setTimeout(r, 3_000));
  const snap = await settled(fleet);
  t.same(Object.keys(snap.connections).sort(), ['live1', 'live2'], 'the live connections were confirmed, not removed');
  t.ok(Number(snap.connections.live1?.last_seen_at) > Number(snap.connections.live1?.connected_at), 'confirmed by a probe since connect');
  t.same(snap.watchers['sensor.0'], ['live1']);
});

t.test('an expired binding is removed by the sweep and its stream closed, with nobody subscribing', async (t) => {
  const fleet = await startFleet(t, { pods: 2, oidc: true, env: ENV });
  const sse = openSse(`${fleet.gateway.url}/events?request_id=exp1`, { headers: { cookie: `access_token=${fleet.issuer!.token({ sub: 'zoe', expiresIn: 6 })}` } });
  t.teardown(() => sse.close());
  await sse.waitFor((m) => m.event === 'ready');
  t.ok((await settled(fleet)).connections.exp1);
  // 6 s of token life: exp is floored to whole seconds and must outlast a first JWKS fetch + connect under load
  await eventually(() => sse.isEnded, 6_000 + 1_000 + PROBE_MS + SLACK_MS, 100); // closed by the gateway on the sweep's request (exp, + S + the close)
  t.notOk((await settled(fleet)).connections.exp1);
  const metrics = (await Promise.all(fleet.pods.map((p) => p.internalServer.inject({ method: 'GET', url: '/metrics' })))).map((r) => r.body).join('\n');
  t.match(metrics, /sse_gateway_connections_total\{action="expired"[^}]*\} 1/, 'counted as expired by the pod that swept it');
});
