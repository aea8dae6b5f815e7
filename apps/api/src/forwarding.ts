import { Forwarding, ForwardingConnectionRegistry } from '@iotsupport/forwarding';
import type { ApiDeps } from './deps.js';
import { gatewayControlOver, type SseParts } from './routes/sse-context.js';

/**
 * Live forwarding on this pod (packages/forwarding, docs/forwarding.md). The returned `sseParts`
 * go to buildApi: the SSE routes use its registry decorator (so it hears of every connect, subscription change
 * and removal) and its gateway client (one keep-alive pool; a close is ordered after the
 * connection's queued events). main.ts starts it before listening and stops it on SIGTERM after
 * the drain, before the listeners close.
 */
export function wireForwarding(deps: ApiDeps): { forwarding: Forwarding; sseParts: SseParts } {
  const { config } = deps;
  const forwarding = new Forwarding({
    config,
    redis: deps.redis,
    registry: deps.metrics.registry,
    logger: deps.logger.child({ component: 'forwarding' }),
    // Queued events get at most a quarter of the shutdown budget; the listeners still need theirs.
    drainTimeoutMs: Math.min(5000, (config.GRACEFUL_SHUTDOWN_TIMEOUT * 1000) / 4),
  });
  deps.lifecycle.addReadinessCheck('ownership_lease', () => forwarding.ready);
  const sseParts: SseParts = {
    registry: new ForwardingConnectionRegistry(deps.redis, config.REDIS_KEY_PREFIX, forwarding),
    gateway: gatewayControlOver(forwarding.gateway),
  };
  return { forwarding, sseParts };
}
