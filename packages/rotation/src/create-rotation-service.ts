import type { Kysely } from 'kysely';
import type { MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import type { Database } from '@iotsupport/db';
import type { IdentityProvider } from '@iotsupport/identity-provider';
import type { Logger } from '@iotsupport/observability';
import { DeviceClients } from './device-clients.js';
import { createRotationNoticeCounter } from './metrics.js';
import type { NudgeSource, RotationNudger } from './nudge.js';
import { createMqttProvisioningNotifier } from './provisioning-notifier.js';
import { RotationService } from './rotation-service.js';
import { createSecretBox } from './secret-box.js';

/** The provisioning notice topic, before `MQTT_TOPIC_PREFIX`. */
export const PROVISIONING_TOPIC = 'iotsupport/updates/provisioning';

/** The configuration fields rotation reads (a subset of @iotsupport/config's Config). */
export interface RotationServiceConfig {
  SECRET_KEY?: string | undefined;
  NODE_ENV: string;
  MQTT_TOPIC_PREFIX: string;
  ROTATION_TIMEOUT_SECONDS: number;
  ROTATION_CRITICAL_THRESHOLD_DAYS: number;
  /** Bounds a provisioning's calls to the identity provider (4 requests at most): see provisioningGuardSeconds. */
  IDP_REQUEST_TIMEOUT_MS?: number;
}

export interface CreateRotationServiceOptions {
  config: RotationServiceConfig;
  db: Kysely<Database>;
  /** The process's MQTT client; notices wait for it to be connected. */
  mqttClient: MqttClient;
  nudger: RotationNudger;
  logger: Logger;
  /** Where `iot_rotation_notices_total{result}` is registered (the process's registry). */
  registry?: Registry;
  nextScheduledRotation?: () => Promise<Date | null>;
  /** See RotationServiceDeps.noticeTimeoutMs. */
  noticeTimeoutMs?: number;
  /** Keycloak (identity-provider's createIdentityProvider); undefined: secrets stay the api's own. */
  identityProvider?: IdentityProvider;
}

/** The one way the api and the worker build their RotationService, so both announce the same way. */
export function createRotationService(opts: CreateRotationServiceOptions): RotationService {
  const { config, logger } = opts;
  const notices = opts.registry ? createRotationNoticeCounter(opts.registry) : undefined;
  const secretBox = createSecretBox({ secretKey: config.SECRET_KEY, nodeEnv: config.NODE_ENV, logger });
  return new RotationService({
    db: opts.db,
    secretBox,
    deviceClients: new DeviceClients({ db: opts.db, identityProvider: opts.identityProvider, secretBox, logger: logger.child({ component: 'device-clients' }) }),
    provisioningGuardSeconds: Math.ceil((4 * (config.IDP_REQUEST_TIMEOUT_MS ?? 5000)) / 1000) + 5,
    notifier: createMqttProvisioningNotifier({
      client: opts.mqttClient,
      // The rule of @iotsupport/config's mqttTopic: the prefix, then the topic.
      topic: `${config.MQTT_TOPIC_PREFIX}${PROVISIONING_TOPIC}`,
      logger,
    }),
    nudger: opts.nudger,
    logger: logger.child({ component: 'rotation' }),
    timeoutSeconds: config.ROTATION_TIMEOUT_SECONDS,
    criticalThresholdDays: config.ROTATION_CRITICAL_THRESHOLD_DAYS,
    nextScheduledRotation: opts.nextScheduledRotation,
    noticeTimeoutMs: opts.noticeTimeoutMs,
    onNoticeResult: notices && ((result) => notices.inc({ result })),
  });
}

/**
 * A RotationNudger over a publish function and its connection — the apps pass contracts'
 * `publishRotationNudge` and their Redis client.
 */
export function publishingNudger<C>(
  publish: (connection: C, redisKeyPrefix: string, source: NudgeSource) => Promise<unknown>,
  connection: C,
  redisKeyPrefix: string,
): RotationNudger {
  return { nudge: async (source) => void (await publish(connection, redisKeyPrefix, source)) };
}
