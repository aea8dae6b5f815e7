import type { MqttClient } from 'mqtt';
import type { Logger } from '@iotsupport/observability';

/** What the state machine needs to tell a device to rotate; the MQTT one below in production. */
export interface ProvisioningNotifier {
  /** Resolves once the broker acknowledged the notice (QoS 1); rejects if that cannot happen in time. */
  notify(clientId: string): Promise<void>;
}

export class MqttNotConnectedError extends Error {
  constructor(waitedMs: number, reason = `not connected after ${waitedMs} ms`) {
    super(`MQTT client ${reason}`);
    this.name = 'MqttNotConnectedError';
  }
}

/**
 * Resolves when the client is connected; waits for the next `connect` otherwise. The original
 * service published before its client had connected and the notice was silently dropped.
 */
export function whenConnected(client: MqttClient, timeoutMs: number): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onConnect = () => settle();
    // A client closed for good (shutdown) will never connect: stop waiting instead of holding the process.
    const onEnd = () => settle(new MqttNotConnectedError(timeoutMs, 'the client was closed'));
    const timer = setTimeout(() => settle(new MqttNotConnectedError(timeoutMs)), timeoutMs);
    client.once('connect', onConnect);
    client.once('end', onEnd);
  });
}

export interface MqttProvisioningNotifierOptions {
  client: MqttClient;
  /** Full topic, already through `mqttTopic(config, 'iotsupport/updates/provisioning')`. */
  topic: string;
  logger: Logger;
  /** How long a notice waits for a (re)connection before it is given up (default 30 s). */
  connectTimeoutMs?: number;
}

/**
 * Publishes `{"client_id": "..."}` on the provisioning topic with QoS 1, only on a connected
 * client. A notice that cannot be delivered is logged and reported to the caller; the device then
 * times out and is retried later, so a lost notice delays a rotation but never wedges it.
 * RotationService stops waiting for it sooner (its notice timeout); a notice still waiting for the
 * connection goes out if the broker comes back within `connectTimeoutMs`.
 */
export function createMqttProvisioningNotifier(opts: MqttProvisioningNotifierOptions): ProvisioningNotifier {
  const timeoutMs = opts.connectTimeoutMs ?? 30_000;
  return {
    async notify(clientId) {
      await whenConnected(opts.client, timeoutMs);
      await opts.client.publishAsync(opts.topic, JSON.stringify({ client_id: clientId }), { qos: 1 });
      opts.logger.info({ clientId, topic: opts.topic }, 'rotation notice published');
    },
  };
}
