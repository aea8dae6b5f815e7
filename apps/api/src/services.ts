import { publishRotationNudge } from '@iotsupport/forwarding';
import { createIdentityProvider } from '@iotsupport/identity-provider';
import { createRotationQueue, createRotationService, nextFleetRun, publishingNudger } from '@iotsupport/rotation';
import type { ApiDeps, ApiServices } from './deps.js';
import { createSseContext, type SseParts } from './routes/sse-context.js';

/**
 * The services the route plugins share, built once per process by buildApi: the SSE context (with
 * forwarding's registry and gateway client when main.ts supplies them) and the RotationService
 * (nudges through forwarding's broadcast path; next fleet run read from the BullMQ scheduler).
 * `close` stops the sweeper and closes what these services opened themselves.
 */
export function createApiServices(deps: ApiDeps, sseParts: SseParts = {}): ApiServices & { close(): Promise<void> } {
  const sse = createSseContext(deps, sseParts);
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
