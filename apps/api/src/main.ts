import { loadConfigOrExit } from '@iotsupport/config';
import { Lifecycle, createLogger, createMetrics, drainDelay } from '@iotsupport/observability';
import { buildApi, type ApiDeps } from './app.js';
import { createClients } from './clients.js';
import { wireForwarding } from './forwarding.js';

/**
 * Composition root of an api pod: config → clients → servers → listen → ordered shutdown.
 * SIGTERM: readiness 503 at once → keep serving SHUTDOWN_DRAIN_SECONDS (balancers stop routing
 * here) → close the public listener (in-flight requests finish, features' onClose hooks run) →
 * close the internal listener → close clients → exit 0, all within GRACEFUL_SHUTDOWN_TIMEOUT
 * (exit 1 if a step overruns it).
 */
const config = loadConfigOrExit('api');
const logger = createLogger({ level: config.LOG_LEVEL, app: 'api', podId: config.POD_ID });
const metrics = createMetrics('api');
const lifecycle = new Lifecycle(logger, metrics.shuttingDown, config.GRACEFUL_SHUTDOWN_TIMEOUT);
lifecycle.installSignalHandlers();
lifecycle.installCrashHandlers();

const clients = createClients(config, logger);
clients.addReadinessChecks(lifecycle);
const deps: ApiDeps = { config, logger, metrics, lifecycle, db: clients.database.db, redis: clients.redis, mqtt: clients.mqtt };
const { forwarding, sseParts } = wireForwarding(deps);
const { publicServer, internalServer } = buildApi(deps, sseParts);

// The drain cannot eat the whole budget: the listeners and clients still need time to close.
const drainSeconds = Math.min(config.SHUTDOWN_DRAIN_SECONDS, config.GRACEFUL_SHUTDOWN_TIMEOUT / 2);
if (drainSeconds < config.SHUTDOWN_DRAIN_SECONDS) logger.warn({ drainSeconds }, 'SHUTDOWN_DRAIN_SECONDS capped to half of GRACEFUL_SHUTDOWN_TIMEOUT');
lifecycle.onShutdown('drain (readiness 503, still serving)', drainDelay(drainSeconds));
// Still serving callbacks and subscribes: hand the owned connections to live pods (docs/forwarding.md).
lifecycle.onShutdown('forwarding: send what is queued, release owned connections', () => forwarding.stop());
lifecycle.onShutdown('close public listener', () => publicServer.close());
lifecycle.onShutdown('close internal listener', () => internalServer.close());
lifecycle.onShutdown('close clients', async () => {
  await forwarding.close();
  await clients.close();
});

try {
  await internalServer.listen({ host: config.HOST, port: config.INTERNAL_PORT });
  await publicServer.listen({ host: config.HOST, port: config.PORT });
  logger.info({ port: config.PORT, internalPort: config.INTERNAL_PORT }, 'api listening');
  // After listen: health answers at once; readiness waits for the lease (Redis may still be coming up).
  await forwarding.start();
} catch (err) {
  logger.fatal({ err }, 'api failed to start');
  process.exit(1);
}
