import type { Test } from 'tap';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import type { FastifyInstance } from 'fastify';
import { mqttTopic, type Config } from '@iotsupport/config';
import { decodeRotationNudge, rotationNudgeChannel, type RotationNudgeSource } from '@iotsupport/contracts';
import { LOCAL_MQTT_URL, LOCAL_REDIS_URL } from '@iotsupport/testkit';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function call(app: FastifyInstance, method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}) {
  const res = await app.inject({ method, url, headers });
  return { status: res.statusCode, body: (res.body ? res.json() : undefined) as Json };
}

/** A model and `count` devices created through the REST API (`headers`: an admin's token with OIDC on); returns the devices' JSON. */
export async function createDevices(app: FastifyInstance, count: number, modelCode = 'thermo-x', headers: Record<string, string> = {}): Promise<Json[]> {
  const model = await app.inject({ method: 'POST', url: '/api/device-models', headers, payload: { code: modelCode, name: 'Thermostat' } });
  const devices: Json[] = [];
  for (let i = 0; i < count; i += 1) {
    const res = await app.inject({
      method: 'POST',
      url: '/api/devices',
      headers,
      payload: { key: `key${String(i).padStart(5, '0')}`, device_model_id: model.json().id, config: { deviceName: `Device ${i}`, n: i } },
    });
    devices.push(res.json());
  }
  return devices;
}

/** Listens on the api's nudge channel (what every api pod turns into `rotation-updated`). */
export async function watchNudges(t: Test, config: Config): Promise<RotationNudgeSource[]> {
  const sub = new Redis(LOCAL_REDIS_URL);
  t.teardown(() => sub.disconnect());
  const seen: RotationNudgeSource[] = [];
  sub.on('message', (_channel, raw) => {
    const message = decodeRotationNudge(raw);
    if (message) seen.push(message.source);
  });
  await sub.subscribe(rotationNudgeChannel(config.REDIS_KEY_PREFIX));
  return seen;
}

/** Client ids announced on `iotsupport/updates/provisioning`, in order. */
export async function watchNotices(t: Test, config: Config): Promise<string[]> {
  const client = await mqtt.connectAsync(LOCAL_MQTT_URL);
  t.teardown(() => client.endAsync());
  const seen: string[] = [];
  client.on('message', (_topic, payload) => seen.push((JSON.parse(payload.toString()) as { client_id: string }).client_id));
  await client.subscribeAsync(mqttTopic(config, 'iotsupport/updates/provisioning'), { qos: 1 });
  return seen;
}
