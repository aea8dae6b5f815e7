import t from 'tap';
import mqtt from 'mqtt';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, LOCAL_MQTT_URL, metricValue, purgeMqttSession, uniqueId, uniqueTopicPrefix } from '@iotsupport/testkit';
import { MqttLogSource, type IncomingMessage } from '../src/index.js';
import { freshMetrics, silentLogger } from './helpers.js';

/**
 * The MQTT side against the real broker. The deferred PUBACK relies on MQTT.js internals (see
 * mqtt-source.ts): these tests are what catches an MQTT.js upgrade that changes them. The
 * "pipeline" here is a list of held deliveries the test acknowledges by hand.
 */
function harness(opts: { maxInflight: number; clientId?: string; topic?: string }) {
  const clientId = opts.clientId ?? uniqueId('src');
  const topic = opts.topic ?? `${uniqueTopicPrefix()}logs`;
  const held: IncomingMessage[] = [];
  const acked = new Set<string>();
  const state = { busyElsewhere: 0, maxHeld: 0 };
  const { registry, metrics } = freshMetrics();
  const source = new MqttLogSource(
    { url: LOCAL_MQTT_URL, clientId, topic, maxInflight: opts.maxInflight, sessionExpirySeconds: 600, keepaliveSeconds: 2, logger: silentLogger, metrics },
    (m) => {
      held.push(m);
      state.maxHeld = Math.max(state.maxHeld, held.length + state.busyElsewhere);
    },
    {
      get pendingMessages() {
        return held.length + state.busyElsewhere;
      },
    },
  );
  /** Acknowledges what is held, like the pipeline after storing it. */
  const ackAll = () => {
    for (const m of held.splice(0)) {
      acked.add(Buffer.from(m.payload).toString());
      m.ack();
    }
    source.onPipelineProgress();
  };
  return { source, held, acked, state, registry, clientId, topic, ackAll };
}

async function publish(topic: string, count: number, tag = 'm') {
  const pub = await mqtt.connectAsync(LOCAL_MQTT_URL, { clientId: uniqueId('pub'), protocolVersion: 5 });
  for (let i = 0; i < count; i++) await pub.publishAsync(topic, `${tag}${i}`, { qos: 1 });
  await pub.endAsync();
}

t.test('never more than INGEST_MAX_INFLIGHT held, even when the broker sends more after the first PUBACK', async (t) => {
  const h = harness({ maxInflight: 5 });
  t.teardown(async () => {
    await h.source.close();
    await purgeMqttSession(h.clientId);
  });
  await eventually(() => h.source.connected);
  await publish(h.topic, 40);
  await eventually(() => {
    h.ackAll();
    return h.acked.size === 40;
  }, 20_000);
  t.ok(h.state.maxHeld <= 5, `held at most 5 (was ${h.state.maxHeld})`);
});

t.test('a full window that does not drain: keepalives go on, deliveries are shed, and come back after it drains', async (t) => {
  const h = harness({ maxInflight: 3 });
  t.teardown(async () => {
    await h.source.close();
    await purgeMqttSession(h.clientId);
  });
  await eventually(() => h.source.connected);
  h.state.busyElsewhere = 1; // the store is down and the pipeline holds another message
  await publish(h.topic, 8);
  await eventually(() => h.held.length === 2);
  // Several keepalive periods (2 s) with the window full and nothing acknowledged.
  await sleep(5500);
  t.equal(h.held.length, 2, 'nothing beyond the window is kept');
  t.ok(await metricValue(h.registry, 'iot_logsink_messages_shed_total') >= 1, 'the delivery beyond the window was shed');
  t.ok(h.source.connected);
  t.equal(h.source.connectCount, 1, 'no keepalive timeout while the window was full');
  h.state.busyElsewhere = 0; // the store is back
  await eventually(() => {
    h.ackAll();
    return h.acked.size === 8;
  }, 20_000);
  t.ok(h.source.connectCount >= 2, 'reconnected to fetch the shed messages');
  t.ok(h.state.maxHeld <= 3);
});

t.test('what was acknowledged is not redelivered; what was not comes back to the next session', async (t) => {
  const clientId = uniqueId('src');
  const topic = `${uniqueTopicPrefix()}logs`;
  t.teardown(() => purgeMqttSession(clientId));
  const a = harness({ maxInflight: 10, clientId, topic });
  await eventually(() => a.source.connected);
  await publish(topic, 6);
  await eventually(() => a.held.length === 6);
  const unacked = a.held.slice(3).map((m) => Buffer.from(m.payload).toString());
  for (const m of a.held.slice(0, 3)) m.ack();
  await a.source.close();

  const b = harness({ maxInflight: 10, clientId, topic });
  t.teardown(() => b.source.close());
  await eventually(() => b.held.length === 3);
  t.same(
    b.held.map((m) => Buffer.from(m.payload).toString()).sort(),
    unacked.sort(),
    'exactly the unacknowledged ones',
  );
  t.equal(await metricValue(b.registry, 'iot_logsink_redeliveries_total'), 3);
  b.ackAll();
  await publish(topic, 1, 'late');
  await eventually(() => b.held.length === 1);
  t.equal(Buffer.from(b.held[0]!.payload).toString(), 'late0', 'nothing else was queued for the session');
});

t.test('after stopTaking nothing new is processed or acknowledged; the next session gets it', async (t) => {
  const clientId = uniqueId('src');
  const topic = `${uniqueTopicPrefix()}logs`;
  t.teardown(() => purgeMqttSession(clientId));
  const a = harness({ maxInflight: 10, clientId, topic });
  await eventually(() => a.source.connected);
  a.source.stopTaking();
  await publish(topic, 2);
  await sleep(300);
  t.equal(a.held.length, 0);
  await a.source.close();
  const b = harness({ maxInflight: 10, clientId, topic });
  t.teardown(() => b.source.close());
  await eventually(() => b.held.length === 2);
});

t.test('close() ends even when the broker stops answering, and the connection is cut', async (t) => {
  // A broker that accepts the session (CONNACK) and then answers nothing: no SUBACK, and it never
  // closes its side, so MQTT.js's clean end waits forever. Shutdown must not hang on it.
  const sockets = new Set<Socket>();
  const broker = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write(Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]))); // MQTT 5 CONNACK, accepted
    // Once the client has sent its FIN, keep writing (PINGRESP): a client socket that is really
    // gone answers with a reset, which closes ours; a half-closed one just reads on.
    let poke: NodeJS.Timeout | undefined;
    socket.on('end', () => (poke = setInterval(() => socket.write(Buffer.from([0xd0, 0x00])), 50)));
    socket.on('close', () => {
      clearInterval(poke);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    broker.close();
  });
  const { metrics } = freshMetrics();
  const url = `mqtt://127.0.0.1:${(broker.address() as { port: number }).port}`;
  const source = new MqttLogSource({ url, clientId: uniqueId('src'), topic: 'logs', maxInflight: 1, sessionExpirySeconds: 60, logger: silentLogger, metrics }, () => undefined, { pendingMessages: 0 });
  await eventually(() => source.connected && sockets.size === 1);
  let closed = false;
  void source.close().then(() => (closed = true));
  await eventually(() => closed, 10_000);
  t.notOk(source.connected, 'close() returned, disconnected');
  await eventually(() => sockets.size === 0, 5_000);
  t.pass('the connection is gone on the broker side too');
  await sleep(1_500); // longer than the reconnect period
  t.equal(sockets.size, 0, 'no reconnect after close');
});
