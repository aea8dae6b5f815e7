import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { createAccessTokenVerifier, type AccessTokenVerifier } from '@iotsupport/auth';
import type { Config } from '@iotsupport/config';
import { streamAliveWithinSeconds } from '@iotsupport/contracts';
import type { Logger } from '@iotsupport/observability';
import { ConnectionRegistry, registryMetrics, type RegistryMetrics } from '@iotsupport/realtime-state';
import { CallerIdentity } from './connection-identity.js';
import { ConnectionService } from './connection-service.js';
import { ConnectionUpkeep } from './connection-upkeep.js';
import { Forwarding, type ForwardingOptions } from './forwarding.js';
import { gatewayControlOver } from './gateway-control.js';
import { Prober } from './prober.js';
import { RegistrySweeper } from './registry-sweeper.js';

/** Forwarding's intervals and timeouts, shortened by tests; defaults are the production ones. */
export type ForwardingTuning = Pick<ForwardingOptions, 'syncTimeoutMs' | 'takeoverIntervalMs' | 'reconcileIntervalMs' | 'orphanIntervalMs'>;

export interface SseConnectionsOptions {
  config: Config;
  /** Command connection (no key prefix); forwarding duplicates it for its subscriber. */
  redis: Redis;
  /** The process's prom-client registry. */
  metrics: Registry;
  logger: Logger;
  tuning?: ForwardingTuning;
}

/** The SSE connection side of one api pod (docs/forwarding.md, docs/registry.md). */
export interface SseConnections {
  /** connect / disconnect / subscribe / unsubscribe: the atomic Redis step, then the owner sync. */
  connections: ConnectionService;
  /** Who the caller is (connect callbacks bind it, device-log calls must match it). */
  identity: CallerIdentity;
  /** The pod's one access-token verifier and JWKS cache (null with OIDC off); device tokens use it too (iot routes). */
  verifier: AccessTokenVerifier | null;
  /** Ownership, take-over, log and nudge forwarding; `ready` = this pod holds a lease. */
  forwarding: Forwarding;
  /** The probe of owned connections and the registry sweep. */
  upkeep: ConnectionUpkeep;
  /** sse_gateway_connections_total and sse_identity_binding_total. */
  metrics: RegistryMetrics;
  /** Listening, lease, claiming, then probe and sweep. */
  start(): Promise<void>;
  /**
   * SIGTERM, while the listeners still serve: stop probing and sweeping, send what is queued,
   * release the owned connections to live pods.
   */
  stop(): Promise<void>;
  /** After the listeners closed: the subscriber and the gateway pools. */
  close(): Promise<void>;
}

/** Builds the SSE connection side of a pod; nothing runs until start(). */
export function createSseConnections(options: SseConnectionsOptions): SseConnections {
  const { config, redis, logger } = options;
  const registry = new ConnectionRegistry(redis, config.REDIS_KEY_PREFIX);
  const forwarding = new Forwarding({
    config,
    redis,
    registry: options.metrics,
    logger: logger.child({ component: 'forwarding' }),
    // Queued events get at most a quarter of the shutdown budget; the listeners still need theirs.
    drainTimeoutMs: Math.min(5000, (config.GRACEFUL_SHUTDOWN_TIMEOUT * 1000) / 4),
    ...options.tuning,
  });
  // One keep-alive pool: a close is ordered after the connection's queued events.
  const gateway = gatewayControlOver(forwarding.gateway);
  const connections = new ConnectionService(registry, forwarding, gateway, logger);
  const metrics = registryMetrics(options.metrics, registry);
  const probeIntervalMs = config.CONNECTION_PROBE_INTERVAL_SECONDS * 1000;
  const upkeep = new ConnectionUpkeep(
    new Prober(forwarding.owned, forwarding.gateway, registry, forwarding.metrics, logger, probeIntervalMs, streamAliveWithinSeconds(config.CONNECTION_PROBE_INTERVAL_SECONDS, config.OWNERSHIP_LEASE_SECONDS)),
    new RegistrySweeper({
      registry,
      removals: connections,
      gateway,
      podId: config.POD_ID,
      intervalMs: config.REGISTRY_SWEEP_INTERVAL_SECONDS * 1000,
      livenessWindowMs: 2 * probeIntervalMs,
      // several failed probe rounds before "unreachable" removes a connection (docs/registry.md)
      unreachableWindowMs: 4 * probeIntervalMs,
      onError: (err) => logger.warn({ err: err.message }, 'registry sweep failed'),
    }),
  );
  const verifier = accessTokenVerifier(config);
  return {
    connections,
    identity: new CallerIdentity(verifier, config.OIDC_COOKIE_NAME, metrics),
    verifier,
    forwarding,
    upkeep,
    metrics,
    async start() {
      await forwarding.start();
      upkeep.start();
    },
    async stop() {
      await upkeep.stop();
      await forwarding.stop();
    },
    async close() {
      await upkeep.stop();
      await forwarding.close();
    },
  };
}

/** The one access-token verifier of a pod; null with OIDC off. */
function accessTokenVerifier(config: Config): AccessTokenVerifier | null {
  if (!config.OIDC_ENABLED) return null;
  return createAccessTokenVerifier({
    // loadConfig guarantees both when OIDC_ENABLED
    issuerUrl: config.OIDC_ISSUER_URL as string,
    audience: config.OIDC_AUDIENCE as string,
    jwksUrl: config.OIDC_JWKS_URL,
    clockSkewSeconds: config.OIDC_CLOCK_SKEW_SECONDS,
    unknownKidCooldownMs: config.OIDC_JWKS_REFETCH_COOLDOWN_SECONDS * 1000,
  });
}
