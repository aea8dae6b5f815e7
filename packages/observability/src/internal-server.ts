import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Lifecycle } from './lifecycle.js';
import { createHttpServer } from './http-server.js';

export interface InternalServerDeps {
  logger: Logger;
  lifecycle: Lifecycle;
  registry: Registry;
}

/** `/health/healthz` (alive), `/health/readyz` (every check passes and not draining). */
export function registerHealthRoutes(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.get('/health/healthz', async () => ({ status: 'ok' }));
  app.get('/health/readyz', async (_req, reply) => {
    const { ready, checks } = await lifecycle.readiness();
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
}

export function registerMetricsRoute(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
}

/**
 * The internal listener every app has: health, metrics and the central error handler.
 * Apps add their own internal routes (the api's gateway callback) before `listen`.
 */
export function createInternalServer(deps: InternalServerDeps): FastifyInstance {
  const app = createHttpServer(deps.logger, 'internal');
  registerHealthRoutes(app, deps.lifecycle);
  registerMetricsRoute(app, deps.registry);
  return app;
}
