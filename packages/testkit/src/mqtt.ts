import mqtt from 'mqtt';
import { LOCAL_MQTT_URL } from './isolation.js';

/**
 * Ends the broker-side persistent session of `clientId` (clean start, session expiry 0), so a test
 * that ran a persistent-session client (ingest) leaves no queue behind on the shared broker.
 * Never throws: a broker that cannot be reached has no session to purge from this test's view.
 */
export async function purgeMqttSession(clientId: string, url = LOCAL_MQTT_URL): Promise<void> {
  const c = mqtt.connect(url, { clientId, clean: true, protocolVersion: 5, reconnectPeriod: 0, properties: { sessionExpiryInterval: 0 } });
  await new Promise<void>((resolve) => {
    c.once('connect', () => resolve());
    c.once('error', () => resolve());
    c.once('close', () => resolve());
  });
  await c.endAsync();
}
