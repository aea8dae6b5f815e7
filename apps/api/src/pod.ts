import type { AddressInfo } from 'node:net';
import type { Config } from '@iotsupport/config';
import { Lifecycle, createLogger, createMetrics, drainDelay, type Logger } from '@iotsupport/observability';
import type { ForwardingTuning } from '@iotsupport/sse-connections';
import { buildApi, type ApiServers } from './app.js';
import { createClients, type ApiClients } from './clients.js';
import type { ApiDeps, ApiServices } from './deps.js';
import { createApiServices } from './services.js';

export interface ApiPodOptions {
  /** Shorter forwarding intervals (tests). */
  tuning?: ForwardingTuning;
}

/** One api pod, built and not yet started. */
export interface ApiPod extends ApiServers {
  config: Config;
  logger: Logger;
  lifecycle: Lifecycle;
  deps: ApiDeps;
  clients: ApiClients;
  services: ApiServices;
  /** Listens (internal then public; port 0 picks a free one), then starts the SSE connection side. */
  start(): Promise<void>;
  /** The shutdown sequence (as on SIGTERM); resolves to the exit code, 0 = clean. */
  stop(): Promise<number>;
  /** After start(): where each listener is. */
  addresses(): { public: string; internal: string };
}

/**
 * The composition of an api pod: config → clients → services → both listeners → ordered shutdown.
 * main.ts runs it; every test fleet builds its pods with it too.
 * Shutdown (SIGTERM or stop()): readiness 503 at once → keep serving SHUTDOWN_DRAIN_SECONDS
 * (balancers stop routing here) → SSE connections: stop probe and sweep, send what is queued,
 * release owned connections to live pods → close the public listener (in-flight requests finish)
 * → close the internal listener → close the services' own connections and the clients, all within
 * GRACEFUL_SHUTDOWN_TIMEOUT (exit code 1 if a step overruns it).
 */
export function createApiPod(config: Config, options: ApiPodOptions = {}): ApiPod {
  const logger = createLogger({ level: config.LOG_LEVEL, app: 'api', podId: config.POD_ID });
  const metrics = createMetrics('api');
  const lifecycle = new Lifecycle(logger, metrics.shuttingDown, config.GRACEFUL_SHUTDOWN_TIMEOUT);
  const clients = createClients(config, logger);
  clients.addReadinessChecks(lifecycle);
  const deps: ApiDeps = { config, logger, metrics, lifecycle, db: clients.database.db, redis: clients.redis, mqtt: clients.mqtt };
  const services = createApiServices(deps, options.tuning);
  lifecycle.addReadinessCheck('ownership_lease', () => services.sse.forwarding.ready);
  const { publicServer, internalServer } = buildApi(deps, services);

  // The drain cannot eat the whole budget: the listeners and clients still need time to close.
  const drainSeconds = Math.min(config.SHUTDOWN_DRAIN_SECONDS, config.GRACEFUL_SHUTDOWN_TIMEOUT / 2);
  if (drainSeconds < config.SHUTDOWN_DRAIN_SECONDS) logger.warn({ drainSeconds }, 'SHUTDOWN_DRAIN_SECONDS capped to half of GRACEFUL_SHUTDOWN_TIMEOUT');
  lifecycle.onShutdown('drain (readiness 503, still serving)', drainDelay(drainSeconds));
  // Still serving callbacks and subscribes: hand the owned connections to live pods (docs/forwarding.md).
  lifecycle.onShutdown('sse connections: stop probe and sweep, send what is queued, release owned connections', () => services.sse.stop());
  lifecycle.onShutdown('close public listener', () => publicServer.close());
  lifecycle.onShutdown('close internal listener', () => internalServer.close());
  lifecycle.onShutdown('close clients (after the services\' own connections)', async () => {
    await services.close();
    await clients.close();
  });

  return {
    config,
    logger,
    lifecycle,
    deps,
    clients,
    services,
    publicServer,
    internalServer,
    async start() {
      await internalServer.listen({ host: config.HOST, port: config.INTERNAL_PORT });
      await publicServer.listen({ host: config.HOST, port: config.PORT });
      logger.info({ port: listeningPort(publicServer), internalPort: listeningPort(internalServer) }, 'api listening');
      // After listen: health answers at once; readiness waits for the lease (Redis may still be coming up).
      await services.sse.start();
    },
    stop: () => lifecycle.shutdown('stop'),
    addresses() {
      return { public: listeningUrl(publicServer), internal: listeningUrl(internalServer) };
    },
  };
}

function listeningPort(server: ApiServers['publicServer']): number {
  return (server.server.address() as AddressInfo).port;
}

/** A URL that reaches the listener from this host (a wildcard address is reached on loopback). */
function listeningUrl(server: ApiServers['publicServer']): string {
  const { address, port } = server.server.address() as AddressInfo;
  const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
  return `http://${host}:${port}`;
}
