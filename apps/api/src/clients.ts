import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import type { Config } from '@iotsupport/config';
import { createDb, type Db } from '@iotsupport/db';
import { addClientReadinessChecks, closeMqtt, closeRedis, logConnectionErrors, mqttConnectOptions, type Lifecycle, type Logger } from '@iotsupport/observability';

/** The api's connections to Redis, PostgreSQL and the MQTT broker. */
export interface ApiClients {
  redis: Redis;
  database: Db;
  mqtt: MqttClient;
  /** Readiness: each of the three reachable. */
  addReadinessChecks(lifecycle: Lifecycle): void;
  /** Graceful first; a client stuck reconnecting is cut after 2 s so shutdown still ends in time. */
  close(): Promise<void>;
}

/**
 * Creates the clients without waiting for them: they connect (and reconnect) in the background and
 * readiness says when they are up, so a pod starts serving health checks at once.
 */
export function createClients(config: Config, logger: Logger): ApiClients {
  const name = `iotsupport-api-${config.POD_ID}`;
  const redis = new Redis(config.REDIS_URL, { connectionName: name });
  logConnectionErrors(redis, logger, 'redis');
  const database = createDb(config.DATABASE_URL, { applicationName: name });
  const mqttClient = mqtt.connect(config.MQTT_URL, mqttConnectOptions(config));
  logConnectionErrors(mqttClient, logger, 'mqtt');

  return {
    redis,
    database,
    mqtt: mqttClient,
    addReadinessChecks(lifecycle) {
      addClientReadinessChecks(lifecycle, { redis, postgres: database.pool, mqtt: mqttClient });
    },
    async close() {
      await Promise.all([closeRedis(redis), database.close(), closeMqtt(mqttClient)]);
    },
  };
}
