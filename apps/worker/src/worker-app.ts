import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import type { Config } from '@iotsupport/config';
import { createDb } from '@iotsupport/db';
import { createIdentityProvider } from '@iotsupport/identity-provider';
import {
  addClientReadinessChecks,
  closeMqtt,
  closeRedis,
  createInternalServer,
  logConnectionErrors,
  mqttConnectOptions,
  type Lifecycle,
  type Logger,
  type Metrics,
} from '@iotsupport/observability';
import {
  createRotationMetrics,
  createRotationQueue,
  createRotationService,
  createRotationWorker,
  registerIdpOutboxGauge,
  registerRotationStateGauge,
  SchedulerWatchdog,
  startIdpOutboxPoller,
  type RotationService,
  type RotationNudger,
  type RotationWorkerOptions,
} from '@iotsupport/rotation';

export interface WorkerAppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  /** Builds the broadcast path on the worker's Redis connection (main.ts: contracts' publishRotationNudge). */
  createNudger: (redis: Redis) => RotationNudger;
  /** Tests observe which worker ran which slot. */
  onRun?: RotationWorkerOptions['onRun'];
}

export interface WorkerApp {
  internalServer: ReturnType<typeof createInternalServer>;
  service: RotationService;
}

/**
 * The worker deployment: BullMQ job schedulers for rotation (fleet on ROTATION_CRON, tick every
 * ROTATION_TICK_SECONDS), their watchdog, the consumer, and the internal listener (PORT, default
 * 3131: /metrics, /health/*). Registers its shutdown steps on `lifecycle` in the order they must
 * run: stop the watchdog → close the BullMQ worker (the running job finishes, no new one is taken)
 * → close the queue → close the listener → close the clients.
 */
export async function startWorkerApp(deps: WorkerAppDeps): Promise<WorkerApp> {
  const { config, logger, lifecycle, metrics } = deps;
  const name = `iotsupport-worker-${config.POD_ID}`;
  // BullMQ's blocking reads need `maxRetriesPerRequest: null`; the worker gets its own connection.
  const queueRedis = new Redis(config.REDIS_URL, { connectionName: name, maxRetriesPerRequest: null });
  const workerRedis = new Redis(config.REDIS_URL, { connectionName: `${name}-consumer`, maxRetriesPerRequest: null });
  for (const r of [queueRedis, workerRedis]) logConnectionErrors(r, logger, 'redis');
  const database = createDb(config.DATABASE_URL, { applicationName: name, max: 5 });
  const mqttClient = mqtt.connect(config.MQTT_URL, mqttConnectOptions(config));
  logConnectionErrors(mqttClient, logger, 'mqtt');

  addClientReadinessChecks(lifecycle, { redis: queueRedis, postgres: database.pool, mqtt: mqttClient });

  const service = createRotationService({
    config,
    db: database.db,
    mqttClient,
    nudger: deps.createNudger(queueRedis),
    logger,
    registry: metrics.registry,
    identityProvider: createIdentityProvider(config),
  });
  const rotationMetrics = createRotationMetrics(metrics.registry);
  registerRotationStateGauge(metrics.registry, service.store);
  // Device clients the identity provider missed (a crash, an outage) are retried every interval.
  const outboxPoller = service.deviceClients.enabled
    ? startIdpOutboxPoller(service.deviceClients, config.IDP_SYNC_INTERVAL_SECONDS * 1000, logger.child({ component: 'device-clients' }))
    : undefined;
  if (outboxPoller) registerIdpOutboxGauge(metrics.registry, service.deviceClients);

  const settings = { cron: config.ROTATION_CRON, tickSeconds: config.ROTATION_TICK_SECONDS };
  const queue = createRotationQueue(queueRedis, config.REDIS_KEY_PREFIX);
  queue.on('error', (err) => logger.warn({ err: err.message }, 'rotation queue error'));
  const watchdog = new SchedulerWatchdog({
    queue,
    settings,
    intervalMs: config.ROTATION_SCHEDULER_WATCHDOG_SECONDS * 1000,
    logger,
    onRepair: (repair) => rotationMetrics.schedulerRepairs.inc(repair),
  });
  watchdog.start(); // creates or updates the schedulers as soon as Redis answers

  const worker = createRotationWorker({
    connection: workerRedis,
    redisKeyPrefix: config.REDIS_KEY_PREFIX,
    service,
    metrics: rotationMetrics,
    logger,
    name: config.POD_ID,
    onRun: deps.onRun,
  });

  const internalServer = createInternalServer({ logger, lifecycle, registry: metrics.registry });

  lifecycle.onShutdown('stop scheduler watchdog', () => watchdog.stop());
  lifecycle.onShutdown('stop identity provider outbox poller', async () => outboxPoller?.stop());
  // Worker.close() waits for the job in progress and takes no new one. Without Redis no job can
  // finish (its completion is a Redis write) and BullMQ would wait for the connection: force it.
  const redisUp = () => workerRedis.status === 'ready' && queueRedis.status === 'ready';
  lifecycle.onShutdown('close rotation worker', () => worker.close(!redisUp()));
  // Without Redis, Queue.close() waits for it too; 'close clients' drops the connection instead.
  lifecycle.onShutdown('close rotation queue', async () => void (redisUp() && (await queue.close())));
  lifecycle.onShutdown('close internal listener', () => internalServer.close());
  lifecycle.onShutdown('close clients', async () => {
    await Promise.all([closeRedis(queueRedis), closeRedis(workerRedis), database.close(), closeMqtt(mqttClient)]);
  });

  return { internalServer, service };
}
