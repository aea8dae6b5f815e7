import t from 'tap';
import { encodeLogChannelMessage, logChannelName } from '@iotsupport/contracts';
import { eventually, openSse, type SseClient } from '@iotsupport/testkit';
import { startFleet, type Fleet } from './sse-fleet.js';

/** The `message` of every log line the browser received in `device-logs` events, in order. */
function loggedMessages(browser: SseClient): string[] {
  return browser
    .envelopes()
    .filter((e) => e.type === 'device-logs')
    .flatMap((e) => (e.payload as { logs: Array<{ message: string }> }).logs.map((line) => line.message));
}

async function publishLine(fleet: Fleet, entityId: string, batchId: string, message: string): Promise<void> {
  const now = Date.now();
  const docs = [{ message }];
  await fleet.redis.publish(
    logChannelName(fleet.prefix, entityId),
    encodeLogChannelMessage({ v: 1, batch_id: batchId, device_entity_id: entityId, docs, received_at_ms: now, ingested_at_ms: now }),
  );
}

t.test('two api pods built by createApiPod: a log line published on the log channel reaches a subscribed connection exactly once', async (t) => {
  const fleet = await startFleet(t, { pods: 2 });
  const [first, second] = fleet.pods;
  await eventually(() => first!.services.sse.forwarding.ready && second!.services.sse.forwarding.ready);

  const browser = openSse(`${fleet.gateway.url}/events?request_id=watcher`);
  t.teardown(() => browser.close());
  await browser.waitFor((m) => m.event === 'ready');
  // Both pods are asked: whichever does not own the connection has to make its owner listen.
  for (const pod of [second!, first!]) {
    const res = await fleet.deviceLogs(pod, 'subscribe', { request_id: 'watcher', device_id: fleet.devices.entity[0] });
    t.equal(res.statusCode, 200, `subscribed through ${pod.config.POD_ID}`);
  }

  await publishLine(fleet, 'sensor.0', 'b1', 'the line');
  // Sent after the line: once it arrived, a copy of the line from either pod would have too.
  await publishLine(fleet, 'sensor.0', 'b2', 'end marker');
  await eventually(() => loggedMessages(browser).includes('end marker'));
  t.same(loggedMessages(browser), ['the line', 'end marker'], 'the line arrived once, before the marker');
});
