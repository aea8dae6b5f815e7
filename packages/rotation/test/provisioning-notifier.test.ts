import t from 'tap';
import mqtt from 'mqtt';
import { mqttTopic } from '@iotsupport/config';
import { eventually, LOCAL_MQTT_URL, uniqueTopicPrefix } from '@iotsupport/testkit';
import { createMqttProvisioningNotifier, MqttNotConnectedError } from '../src/index.js';
import { silentLogger } from './helpers.js';

t.test('a notice published before the client connected waits for the connection and arrives', async (t) => {
  const topic = mqttTopic({ MQTT_TOPIC_PREFIX: uniqueTopicPrefix() }, 'iotsupport/updates/provisioning');
  const listener = await mqtt.connectAsync(LOCAL_MQTT_URL);
  t.teardown(() => listener.endAsync());
  const received: Array<{ payload: string; qos: number }> = [];
  listener.on('message', (_topic, payload, packet) => received.push({ payload: payload.toString(), qos: packet.qos }));
  await listener.subscribeAsync(topic, { qos: 1 });

  const client = mqtt.connect(LOCAL_MQTT_URL, { manualConnect: true });
  t.teardown(() => client.endAsync());
  const notifier = createMqttProvisioningNotifier({ client, topic, logger: silentLogger, connectTimeoutMs: 10_000 });
  const sent = notifier.notify('iotdevice-thermo-x-abcd1234');
  await new Promise((r) => setTimeout(r, 200));
  t.same(received, [], 'nothing is sent while disconnected');
  client.connect();
  await sent;
  await eventually(() => received.length === 1, 5000);
  t.same(JSON.parse(received[0]!.payload), { client_id: 'iotdevice-thermo-x-abcd1234' });
  t.equal(received[0]!.qos, 1, 'QoS 1');
});

t.test('a notice that cannot reach a broker in time is reported, not silently dropped', async (t) => {
  const client = mqtt.connect('mqtt://127.0.0.1:1', { reconnectPeriod: 100, connectTimeout: 200 });
  client.on('error', () => {});
  t.teardown(() => client.endAsync(true));
  const notifier = createMqttProvisioningNotifier({ client, topic: 'x/provisioning', logger: silentLogger, connectTimeoutMs: 300 });
  await t.rejects(notifier.notify('iotdevice-m-abcd1234'), MqttNotConnectedError);
});

t.test('a notice waiting for a connection is given up when the client is closed (shutdown does not wait for it)', async (t) => {
  const client = mqtt.connect('mqtt://127.0.0.1:1', { reconnectPeriod: 100, connectTimeout: 200 });
  client.on('error', () => {});
  const notifier = createMqttProvisioningNotifier({ client, topic: 'x/provisioning', logger: silentLogger, connectTimeoutMs: 600_000 });
  const sent = notifier.notify('iotdevice-m-abcd1234');
  await client.endAsync(true);
  await t.rejects(sent, MqttNotConnectedError);
});
