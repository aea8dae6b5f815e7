import { publishRotationNudge } from '@iotsupport/contracts';
import { createIdentityProvider } from '@iotsupport/identity-provider';
import { createRotationQueue, createRotationService, nextFleetRun, publishingNudger } from '@iotsupport/rotation';
import { createSseConnections, type ForwardingTuning } from '@iotsupport/sse-connections';
import type { ApiDeps, ApiServices } from './deps.js';

/**
 * The services the route plugins share, built once per pod by createApiPod: the SSE connection
 * side (packages/sse-connections) and the RotationService (nudges published on the contract's
 * nudge channel; next fleet run read from the BullMQ scheduler). `close` closes what these
 * services opened themselves, after the listeners closed.
 */
export function createApiServices(deps: ApiDeps, tuning?: ForwardingTuning): ApiServices & { close(): Promise<void> } {
  const sse = createSseConnections({ config: deps.config, redis: deps.redis, metrics: deps.metrics.registry, logger: deps.logger, tuning });
  // The queue only reads the fleet scheduler, on the shared connection (which BullMQ leaves open).
  const queue = createRotationQueue(deps.redis, deps.config.REDIS_KEY_PREFIX);
  queue.on('error', (err) => deps.logger.warn({ err: err.message }, 'rotation queue error'));
  const rotation = createRotationService({
    config: deps.config,
    db: deps.db,
    mqttClient: deps.mqtt,
    nudger: publishingNudger(publishRotationNudge, deps.redis, deps.config.REDIS_KEY_PREFIX),
    logger: deps.logger,
    registry: deps.metrics.registry,
    nextScheduledRotation: () => nextFleetRun(queue, deps.config.ROTATION_CRON),
    // Devices are clients at Keycloak when OIDC is on with a service account (docs/identity-provider.md).
    identityProvider: createIdentityProvider(deps.config),
  });
  return {
    sse,
    rotation,
    async close() {
      await Promise.all([sse.close(), queue.close()]);
    },
  };
}
