import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import { accessTokenFromHeaders, type HeaderBag, type VerifiedToken } from '@iotsupport/auth';
import type { Config } from '@iotsupport/config';
import { AppError } from '@iotsupport/contracts';
import type { Logger } from '@iotsupport/observability';
import { parseDeviceClientId } from '@iotsupport/rotation';
import { rolesAt } from './roles-claim.js';
import { ErrorBody } from './schemas/error-body.js';

/**
 * Who may call a public route, declared by the route itself: `config: { auth: 'admin' }`.
 * - `public`: anyone (the OpenAPI document).
 * - `user`: a valid user token (Bearer header or the OIDC_COOKIE_NAME cookie); a device client's token is 403.
 * - `admin`: `user`, and the token carries OIDC_ADMIN_ROLE at OIDC_ROLES_CLAIM when that role is set.
 * - `device`: a valid token whose `azp` is a device client id `iotdevice-<model code>-<key>`
 *   (the route then loads that device; an unknown one is 401 there).
 * With OIDC off (no verifier) every rule lets every request through (development; refused in
 * production unless ALLOW_UNAUTHENTICATED_API). The table of every route: docs/api-auth.md.
 */
export const ROUTE_AUTH_RULES = ['public', 'user', 'admin', 'device'] as const;
export type RouteAuthRule = (typeof ROUTE_AUTH_RULES)[number];

/** The authenticated caller of a request (null: a public route, or OIDC off). */
export type Caller =
  | { kind: 'user'; token: VerifiedToken }
  | { kind: 'device'; token: VerifiedToken; clientId: { modelCode: string; key: string } };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every public route (the public listener refuses to start without it). */
    auth?: RouteAuthRule;
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

export interface RouteAuthOptions {
  /** The process's token verifier; null with OIDC off. */
  verifier: { verifyAccessToken(token: string): Promise<VerifiedToken> } | null;
  config: Pick<Config, 'OIDC_COOKIE_NAME' | 'OIDC_ADMIN_ROLE' | 'OIDC_ROLES_CLAIM'>;
  logger: Logger;
}

/** The OpenAPI security schemes the rules use (components.securitySchemes of the document). */
export function openApiSecuritySchemes(cookieName: string) {
  return {
    bearerAuth: { type: 'http' as const, scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token of the OIDC issuer (users and devices)' },
    cookieAuth: { type: 'apiKey' as const, in: 'cookie' as const, name: cookieName, description: 'The same access token in a cookie (browsers)' },
  };
}

const OPENAPI_SECURITY: Record<RouteAuthRule, Array<Record<string, string[]>>> = {
  public: [],
  user: [{ bearerAuth: [] }, { cookieAuth: [] }],
  admin: [{ bearerAuth: [] }, { cookieAuth: [] }],
  device: [{ bearerAuth: [] }],
};

/** What the rule can answer besides the route's own statuses: 401, 403 (a rule refuses), 503 (issuer unreachable). */
const AUTH_STATUSES: Record<RouteAuthRule, number[]> = { public: [], user: [401, 403, 503], admin: [401, 403, 503], device: [401, 503] };

function isRule(value: unknown): value is RouteAuthRule {
  return (ROUTE_AUTH_RULES as readonly unknown[]).includes(value);
}

/** The rule's security and error answers in the route's OpenAPI operation (the `hide`-den ones too: harmless). */
function documentRule(route: RouteOptions, rule: RouteAuthRule): void {
  const schema: FastifySchema & { security?: unknown } = (route.schema ??= {});
  schema.security = OPENAPI_SECURITY[rule];
  const response = (schema.response ?? {}) as Record<number, unknown>;
  for (const status of AUTH_STATUSES[rule]) response[status] ??= ErrorBody;
  if (AUTH_STATUSES[rule].length > 0) schema.response = response;
}

/**
 * Installs the route rules on the public listener: call before any route is registered. One
 * `onRequest` hook authenticates every request by its route's rule, before its body is even read
 * (an anonymous caller gets 401 whatever it sent); the route then finds the caller in
 * `request.caller`. A route registered without a valid rule stops the listener from starting.
 */
export function installRouteAuth(app: FastifyInstance, options: RouteAuthOptions): void {
  const { verifier, config, logger } = options;
  if (!verifier) {
    logger.warn('OIDC_ENABLED=false: every public route is open, nobody is authenticated (development only; NODE_ENV=production refuses this unless ALLOW_UNAUTHENTICATED_API=true)');
  } else if (!config.OIDC_ADMIN_ROLE) {
    logger.warn('OIDC_ADMIN_ROLE is not set: every valid user token may create, change and delete devices and trigger rotations');
  }

  const routes: RouteOptions[] = [];
  app.decorateRequest('caller', null);
  app.addHook('onRoute', (route) => {
    routes.push(route);
    const rule = route.config?.auth;
    if (isRule(rule)) documentRule(route, rule);
  });
  // Checked once every plugin has registered its routes (the docs routes get their rule from their own plugin's onRoute).
  app.addHook('onReady', async () => {
    const missing = routes.filter((route) => !isRule(route.config?.auth)).map((route) => `${String(route.method)} ${route.url}`);
    if (missing.length > 0) throw new Error(`public routes without an auth rule (config.auth, docs/api-auth.md): ${missing.join(', ')}`);
  });

  app.addHook('onRequest', async (request) => {
    const rule = request.routeOptions.config.auth;
    // undefined: no route matched (the 404 answer); every route has a rule (checked above)
    if (!verifier || rule === undefined || rule === 'public') return;
    request.caller = await authenticate(rule, request.headers);
  });

  async function authenticate(rule: Exclude<RouteAuthRule, 'public'>, headers: HeaderBag): Promise<Caller> {
    const token = accessTokenFromHeaders(headers, config.OIDC_COOKIE_NAME);
    if (!token) throw new AppError('UNAUTHORIZED');
    const verified = await (verifier as NonNullable<typeof verifier>).verifyAccessToken(token);
    const deviceClient = verified.azp ? parseDeviceClientId(verified.azp) : undefined;
    if (rule === 'device') {
      if (!deviceClient) throw new AppError('INVALID_DEVICE_CREDENTIALS', 'The token was not issued to a device client');
      return { kind: 'device', token: verified, clientId: deviceClient };
    }
    if (deviceClient) throw new AppError('USER_TOKEN_REQUIRED');
    if (rule === 'admin' && config.OIDC_ADMIN_ROLE && !rolesAt(verified.claims, config.OIDC_ROLES_CLAIM).includes(config.OIDC_ADMIN_ROLE)) {
      throw new AppError('ADMIN_ROLE_REQUIRED');
    }
    return { kind: 'user', token: verified };
  }
}
