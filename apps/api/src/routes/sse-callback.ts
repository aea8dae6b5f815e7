import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Value } from 'typebox/value';
import { AppError, GatewayCallback, isValidRequestId, type GatewayConnectCallback, type GatewayDisconnectCallback } from '@iotsupport/contracts';
import { toAppError } from '@iotsupport/observability';
import type { ApiContext } from '../deps.js';

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
 * callbacks (shared/reference/sse-gateway-protocol.md): secret → body → connect or disconnect
 * through the ConnectionService → `{}`.
 */
const sseCallbackRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, deps) => {
  const expectedSecret = deps.config.SSE_CALLBACK_SECRET ? digest(deps.config.SSE_CALLBACK_SECRET) : null;
  if (!expectedSecret) deps.logger.warn('SSE_CALLBACK_SECRET is not set: the SSE callback accepts any caller (never in production)');

  // The gateway always sends JSON; anything else is a bad callback (400), not a 415.
  app.addContentTypeParser('*', (_request, _payload, done) => done(new AppError('INVALID_CALLBACK', 'callback body must be JSON'), undefined));

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
      if (body.action === 'connect') await connect(deps, body);
      else await disconnect(deps, body);
      return {};
    },
  );
};

/** Connect answers the gateway shows the browser as `event: rejected` (sse-gateway-protocol.md). */
const GATEWAY_REJECTS = new Set([400, 401, 403]);

async function connect(ctx: ApiContext, body: GatewayConnectCallback): Promise<void> {
  const { sse, config } = ctx;
  const requestId = requestIdFromUrl(body.request.url);
  if (!isValidRequestId(requestId)) {
    sse.metrics.connections.inc({ action: 'rejected' });
    throw new AppError('INVALID_REQUEST_ID');
  }
  let identity;
  try {
    identity = await sse.identity.bindConnection(body.request.headers ?? {});
  } catch (err) {
    // Only what the gateway turns into an in-stream `rejected` counts as one (protocol: 400, 401,
    // 403); an unreachable issuer is a 503 the browser sees as such (sse_identity_binding_total
    // counts it as verifier_unavailable).
    if (GATEWAY_REJECTS.has(toAppError(err).status)) sse.metrics.connections.inc({ action: 'rejected' });
    throw err;
  }
  await sse.connections.connect({
    requestId,
    token: body.token,
    url: body.request.url,
    ...identity,
    receivedBy: config.POD_ID,
    gateway: config.SSE_GATEWAY_URL,
  });
}

async function disconnect(ctx: ApiContext, body: GatewayDisconnectCallback): Promise<void> {
  const removed = await ctx.sse.connections.disconnect(body.token);
  if (!removed) ctx.logger.debug({ reason: body.reason }, 'disconnect for a token that is not current: ignored');
}

export default sseCallbackRoutes;
