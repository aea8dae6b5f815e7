import { createAccessTokenVerifier, type AccessTokenVerifier } from '@iotsupport/auth';
import { findDeviceEntityId } from '@iotsupport/db';
import { GatewayClient, gatewayClientOptions } from '@iotsupport/gateway-client';
import { ConnectionRegistry, RegistrySweeper, registryMetrics, type GatewayControl, type RegistryMetrics } from '@iotsupport/realtime-state';
import type { ApiDeps } from '../deps.js';

/**
 * What the SSE callback and the device-log routes share on one api process: the connection
 * registry, the token verifier (null with OIDC off), the gateway (close/probe), the sweeper and
 * the metrics. Built once per process (services.ts), so both listeners' plugins use the same objects.
 */
export interface SseContext {
  registry: ConnectionRegistry;
  verifier: AccessTokenVerifier | null;
  gateway: GatewayControl;
  sweeper: RegistrySweeper;
  metrics: RegistryMetrics;
  /** The device's entity id (null when it has none), or null when there is no such device. */
  lookupDevice(deviceId: number): Promise<{ entityId: string | null } | null>;
  /** Closes what the context created itself (the default gateway client). */
  close(): Promise<void>;
}

/**
 * Parts the composition root supplies when forwarding runs on this process: its
 * ForwardingConnectionRegistry (so forwarding hears of every transition) and its gateway client
 * (so a close is ordered after the connection's queued events). Without them (route tests), a
 * plain registry and a gateway client of the context's own.
 */
export interface SseParts {
  registry?: ConnectionRegistry;
  gateway?: GatewayControl;
}

/** A GatewayControl over the gateway client: closes and probes are never fenced (they act for the registry). */
export function gatewayControlOver(client: GatewayClient): GatewayControl {
  return {
    async close(token, gatewayUrl) {
      const outcome = await client.close(token, { gatewayUrl, fenced: false, service: 'close' });
      return outcome.status === 'ok' ? 'closed' : outcome.status === 'not_found' ? 'gone' : 'failed';
    },
    async probe(token, gatewayUrl) {
      const outcome = await client.probe(token, { gatewayUrl, fenced: false, service: 'probe' });
      return outcome.status === 'ok' ? 'alive' : outcome.status === 'not_found' ? 'gone' : 'unreachable';
    },
  };
}

const INT4_MAX = 2_147_483_647;

/** Builds the process's one SSE context (api services.ts); `supplied`: forwarding's registry and gateway client. */
export function createSseContext(deps: ApiDeps, supplied: SseParts = {}): SseContext {
  const { config } = deps;
  const registry = supplied.registry ?? new ConnectionRegistry(deps.redis, config.REDIS_KEY_PREFIX);
  let ownClient: GatewayClient | null = null;
  const gateway =
    supplied.gateway ??
    gatewayControlOver(
      (ownClient = new GatewayClient({ ...gatewayClientOptions(config), registry: deps.metrics.registry })),
    );
  const verifier = config.OIDC_ENABLED
    ? createAccessTokenVerifier({
        // loadConfig guarantees both when OIDC_ENABLED
        issuerUrl: config.OIDC_ISSUER_URL as string,
        audience: config.OIDC_AUDIENCE as string,
        jwksUrl: config.OIDC_JWKS_URL,
        clockSkewSeconds: config.OIDC_CLOCK_SKEW_SECONDS,
        unknownKidCooldownMs: config.OIDC_JWKS_REFETCH_COOLDOWN_SECONDS * 1000,
      })
    : null;
  const sweeper = new RegistrySweeper({
    registry,
    gateway,
    podId: config.POD_ID,
    intervalMs: config.REGISTRY_SWEEP_INTERVAL_SECONDS * 1000,
    livenessWindowMs: 2 * config.CONNECTION_PROBE_INTERVAL_SECONDS * 1000,
    // several failed probe rounds before "unreachable" removes a connection (docs/registry.md)
    unreachableWindowMs: 4 * config.CONNECTION_PROBE_INTERVAL_SECONDS * 1000,
    onError: (err) => deps.logger.warn({ err: err.message }, 'registry sweep failed'),
  });
  const context: SseContext = {
    registry,
    verifier,
    gateway,
    sweeper,
    metrics: registryMetrics(deps.metrics.registry, registry),
    async lookupDevice(deviceId) {
      // ids are int4: anything else cannot exist (and must not reach PostgreSQL as an error)
      if (!Number.isSafeInteger(deviceId) || deviceId < 1 || deviceId > INT4_MAX) return null;
      return (await findDeviceEntityId(deps.db, deviceId)) ?? null;
    },
    async close() {
      await sweeper.stop();
      await ownClient?.destroy();
    },
  };
  return context;
}

/**
 * Ends a connection whose binding expired, if it still exists: whichever pod gets there first
 * removes it atomically and closes the stream at its gateway. The close is not awaited: the
 * gateway's close waits for our disconnect callback, and nothing here holds anything that
 * callback needs, but the caller's answer should not wait for the gateway either.
 */
export async function endExpiredBinding(ctx: SseContext, requestId: string, log: ApiDeps['logger']): Promise<void> {
  const result = await ctx.registry.expireBinding(requestId);
  if (result.expired) closeInBackground(ctx, result.token, result.gateway, log);
}

export function closeInBackground(ctx: SseContext, token: string, gatewayUrl: string, log: ApiDeps['logger']): void {
  ctx.gateway.close(token, gatewayUrl).then(
    (outcome) => {
      if (outcome === 'failed') log.warn({ gateway: gatewayUrl }, 'closing a stream at the gateway failed');
    },
    (err: Error) => log.warn({ err: err.message, gateway: gatewayUrl }, 'closing a stream at the gateway failed'),
  );
}
