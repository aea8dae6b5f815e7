import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Value } from 'typebox/value';
import { AppError, GatewayCallback, isValidRequestId, type GatewayConnectCallback, type GatewayDisconnectCallback } from '@iotsupport/contracts';
import { toAppError } from '@iotsupport/observability';
import type { ApiContext, ApiDeps } from '../deps.js';
import { bindConnectionIdentity } from './sse-identity.js';
import { closeInBackground, type SseContext } from './sse-context.js';

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Constant-time check of `?secret=`: both sides hashed to equal-length digests first. */
export function callbackSecretMatches(expected: Buffer, given: unknown): boolean {
  const value = Array.isArray(given) ? given[0] : given;
  if (typeof value !== 'string') return false;
  return timingSafeEqual(expected, digest(value));
}

/** The first `request_id` query value of the gateway's raw `request.url`, or null. */
export function requestIdFromUrl(url: string): string | null {
  try {
    return new URL(url, 'http://gateway.invalid').searchParams.get('request_id');
  } catch {
    return null;
  }
}

/**
 * `POST /api/sse/callback?secret=` (internal listener): the SSE Gateway's connect and disconnect
 * callbacks (shared/reference/sse-gateway-protocol.md). Also runs this pod's registry sweep.
 */
const sseCallbackRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, deps) => {
  const ctx = deps.sse;
  const expectedSecret = deps.config.SSE_CALLBACK_SECRET ? digest(deps.config.SSE_CALLBACK_SECRET) : null;
  if (!expectedSecret) deps.logger.warn('SSE_CALLBACK_SECRET is not set: the SSE callback accepts any caller (never in production)');

  // The gateway always sends JSON; anything else is a bad callback (400), not a 415.
  app.addContentTypeParser('*', (_request, _payload, done) => done(new AppError('INVALID_CALLBACK', 'callback body must be JSON'), undefined));

  app.addHook('onReady', async () => ctx.sweeper.start());

  app.post(
    '/api/sse/callback',
    {
      // before the body is even read: an unauthenticated caller learns nothing about bodies
      onRequest: async (request) => {
        if (expectedSecret && !callbackSecretMatches(expectedSecret, (request.query as Record<string, unknown>).secret)) {
          throw new AppError('INVALID_CALLBACK_SECRET');
        }
      },
      schema: { hide: true },
    },
    async (request) => {
      const body = request.body;
      if (!Value.Check(GatewayCallback, body)) throw new AppError('INVALID_CALLBACK');
      if (body.action === 'connect') await connect(ctx, deps, body);
      else await disconnect(ctx, deps, body);
      return {};
    },
  );
};

/** Connect answers the gateway shows the browser as `event: rejected` (sse-gateway-protocol.md). */
const GATEWAY_REJECTS = new Set([400, 401, 403]);

async function connect(ctx: SseContext, deps: ApiDeps, body: GatewayConnectCallback): Promise<void> {
  const requestId = requestIdFromUrl(body.request.url);
  if (!isValidRequestId(requestId)) {
    ctx.metrics.connections.inc({ action: 'rejected' });
    throw new AppError('INVALID_REQUEST_ID');
  }
  let identity;
  try {
    identity = await bindConnectionIdentity(ctx, body.request.headers ?? {}, deps.config.OIDC_COOKIE_NAME);
  } catch (err) {
    // Only what the gateway turns into an in-stream `rejected` counts as one (protocol: 400, 401,
    // 403); an unreachable issuer is a 503 the browser sees as such (sse_identity_binding_total
    // counts it as verifier_unavailable).
    if (GATEWAY_REJECTS.has(toAppError(err).status)) ctx.metrics.connections.inc({ action: 'rejected' });
    throw err;
  }
  const result = await ctx.registry.connect({
    requestId,
    token: body.token,
    url: body.request.url,
    ...identity,
    receivedBy: deps.config.POD_ID,
    gateway: deps.config.SSE_GATEWAY_URL,
  });
  if (result.replaced) {
    // The old stream is closed through the gateway that holds it. Not awaited: the gateway answers
    // the close only after our answer to its disconnect callback (which finds a stale token and
    // changes nothing), and this connect's own answer must not wait on that round trip.
    closeInBackground(ctx, result.replaced.token, result.replaced.gateway, deps.logger);
  }
}

async function disconnect(ctx: SseContext, deps: ApiDeps, body: GatewayDisconnectCallback): Promise<void> {
  const result = await ctx.registry.disconnect(body.token);
  if (!result.removed) deps.logger.debug({ reason: body.reason }, 'disconnect for a token that is not current: ignored');
}

export default sseCallbackRoutes;
