import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import mqtt from 'mqtt';
import { mqttTopic } from '@iotsupport/config';
import { eventually, LOCAL_MQTT_URL, LOCAL_REDIS_URL } from '@iotsupport/testkit';

const WORKER_MAIN = fileURLToPath(new URL('../../../worker/dist/src/main.js', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** Its internal listener (`/metrics`, `/health/*`). */
  url: string;
  output(): string;
}

/**
 * A worker process (`apps/worker/dist/src/main.js`) on the local Redis and broker, with `env` on
 * top (DATABASE_URL, REDIS_KEY_PREFIX, POD_ID...). Stopped with SIGTERM in teardown.
 */
export async function startWorkerProcess(t: { teardown(fn: () => unknown): void }, env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [WORKER_MAIN], {
    env: { PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', REDIS_URL: LOCAL_REDIS_URL, MQTT_URL: LOCAL_MQTT_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'close');
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  // PORT=0: the internal listener's address is in the start-up log line.
  const url = await eventually(() => /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], 30_000, 50).catch(() => {
    throw new Error(`worker did not start:\n${output.slice(-3000)}`);
  });
  return { child, url: url!, output: () => output };
}

/**
 * Simulated devices' MQTT side: one session subscribed to the provisioning topic, each notice
 * dispatched to the device of its client id (counted, then its behaviour runs). End the client in teardown.
 */
export async function dispatchNotices<D extends { clientId: string; notices: number; behaviour: (self: D) => Promise<void> }>(topicPrefix: string, devices: D[]): Promise<MqttClient> {
  const client = await mqtt.connectAsync(LOCAL_MQTT_URL);
  client.on('message', (_topic, payload) => {
    const { client_id } = JSON.parse(payload.toString()) as { client_id: string };
    const sim = devices.find((d) => d.clientId === client_id);
    if (!sim) return;
    sim.notices += 1;
    void sim.behaviour(sim);
  });
  await client.subscribeAsync(mqttTopic({ MQTT_TOPIC_PREFIX: topicPrefix }, 'iotsupport/updates/provisioning'), { qos: 1 });
  return client;
}
