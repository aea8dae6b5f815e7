import { loadConfigOrExit } from '@iotsupport/config';
import { Lifecycle, createLogger, createMetrics } from '@iotsupport/observability';
import { publishRotationNudge } from '@iotsupport/contracts';
import { publishingNudger } from '@iotsupport/rotation';
import { startWorkerApp } from './worker-app.js';

/**
 * Composition root of the worker deployment (BullMQ rotation jobs). Internal listener on PORT
 * (default 3131): /metrics, /health/healthz, /health/readyz. SIGTERM: readiness 503, the running
 * job finishes, no new one starts, clients close, exit 0 (see worker-app.ts for the order).
 */
const config = loadConfigOrExit('worker');
const logger = createLogger({ level: config.LOG_LEVEL, app: 'worker', podId: config.POD_ID });
const metrics = createMetrics('worker');
const lifecycle = new Lifecycle(logger, metrics.shuttingDown, config.GRACEFUL_SHUTDOWN_TIMEOUT);
lifecycle.installSignalHandlers();
lifecycle.installCrashHandlers();

try {
  const { internalServer } = await startWorkerApp({
    config,
    logger,
    metrics,
    lifecycle,
    // One PUBLISH on the nudge channel: every api pod sends rotation-updated to the connections it owns.
    createNudger: (redis) => publishingNudger(publishRotationNudge, redis, config.REDIS_KEY_PREFIX),
  });
  const address = await internalServer.listen({ host: config.HOST, port: config.PORT });
  logger.info({ address, cron: config.ROTATION_CRON, tickSeconds: config.ROTATION_TICK_SECONDS }, 'worker started');
} catch (err) {
  logger.fatal({ err }, 'worker failed to start');
  process.exit(1);
}
