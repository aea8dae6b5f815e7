import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { createHttpServer, createInternalServer } from '@iotsupport/observability';
import type { ApiContext, ApiDeps, ApiRoutePlugin, ApiServices } from './deps.js';
import { installRouteAuth, openApiSecuritySchemes } from './route-auth.js';
import deviceModelRoutes from './routes/device-models.js';
import deviceRoutes from './routes/devices.js';
import iotRoutes from './routes/iot.js';
import rotationRoutes from './routes/rotation.js';
import rotationNudgeRoutes from './routes/rotation-nudge.js';
import deviceLogRoutes from './routes/device-logs.js';
import sseCallbackRoutes from './routes/sse-callback.js';

export type { ApiContext, ApiDeps, ApiRoutePlugin } from './deps.js';

/* =============================================================================================
 * ROUTE REGISTRATION — one line per feature.
 * A feature is `src/routes/<feature>.ts` whose default export is an ApiRoutePlugin (a fastify
 * plugin that receives the ApiContext — deps and shared services — as its options). Import it above and add it to ONE list below.
 * Every public route declares who may call it, `config: { auth: 'public' | 'user' | 'admin' | 'device' }`
 * (route-auth.ts; the public listener does not start with a route that lacks it; table: docs/api-auth.md).
 * ============================================================================================= */

/** Public listener (PORT): what browsers, devices and operators call. */
const PUBLIC_ROUTES: ApiRoutePlugin[] = [
  deviceModelRoutes, // GET/POST /api/device-models
  deviceRoutes, // GET/POST /api/devices, GET/PUT/DELETE /api/devices/:id
  deviceLogRoutes, // POST /api/device-logs/subscribe|unsubscribe
  rotationRoutes, // /api/rotation/*, POST /api/devices/:id/rotate
  iotRoutes, // /api/iot/provisioning, /api/iot/config
];

/** Internal listener (INTERNAL_PORT), next to /health/* and /metrics. Never on the public one. */
const INTERNAL_ROUTES: ApiRoutePlugin[] = [
  sseCallbackRoutes, // POST /api/sse/callback
  rotationNudgeRoutes, // POST /internal/rotation-nudge
];

/* ============================================================================================= */

export interface ApiServers {
  /** PORT: `/api/*` and the OpenAPI docs at `/api/docs` (JSON at `/api/docs/json`). */
  publicServer: FastifyInstance;
  /** INTERNAL_PORT: health, metrics, gateway callback, rotation nudge. */
  internalServer: FastifyInstance;
}

/** The OpenAPI document and its UI at /api/docs: public, so clients can learn how to authenticate (docs/api-auth.md). */
function openApiDocs(app: FastifyInstance, cookieName: string): void {
  void app.register(swagger, {
    openapi: {
      info: {
        title: 'iotsupport-realtime api',
        version: '1',
        description: 'Public REST API of the api pods. Every error body is {"error": string, "code": string}. Who may call what: docs/api-auth.md.',
      },
      components: { securitySchemes: openApiSecuritySchemes(cookieName) },
    },
  });
  void app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...route.config, auth: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/api/docs' });
  });
}

/**
 * Builds both listeners of the api without starting them (createApiPod listens).
 * Validation: typebox compiler (request bodies are never coerced or stripped, so an unknown field
 * is a 400); errors go through the central handler of observability on both.
 */
export function buildApi(deps: ApiDeps, services: ApiServices): ApiServers {
  const context: ApiContext = { ...deps, sse: services.sse, rotation: services.rotation };

  const publicServer = createHttpServer(deps.logger, 'public');
  publicServer.setValidatorCompiler(TypeBoxValidatorCompiler);
  installRouteAuth(publicServer, { verifier: services.sse.verifier, config: deps.config, logger: deps.logger });
  openApiDocs(publicServer, deps.config.OIDC_COOKIE_NAME);
  for (const routes of PUBLIC_ROUTES) void publicServer.register(routes, context);

  const internalServer = createInternalServer({ logger: deps.logger, lifecycle: deps.lifecycle, registry: deps.metrics.registry });
  internalServer.setValidatorCompiler(TypeBoxValidatorCompiler);
  for (const routes of INTERNAL_ROUTES) void internalServer.register(routes, context);

  return { publicServer, internalServer };
}
