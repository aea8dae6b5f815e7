import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { AppError, DeviceLogSubscribed, DeviceLogSubscriptionBody, DeviceLogUnsubscribed } from '@iotsupport/contracts';
import type { ApiContext, ApiDeps } from '../deps.js';
import { errorResponses } from './device-schemas.js';
import { callerSubject } from './sse-identity.js';
import { endExpiredBinding, type SseContext } from './sse-context.js';

/**
 * `POST /api/device-logs/subscribe` and `/unsubscribe` (public listener). Order of checks:
 * caller authentication (401) → body (400) → device (404) → the connection's binding and the
 * change itself, in one atomic script (403 / 404 SUBSCRIPTION_NOT_FOUND).
 */
const deviceLogRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, deps) => {
  const ctx = deps.sse;
  const callers = new WeakMap<FastifyRequest, string | null>();
  const tags = ['device-logs'];

  // Authentication before validation: an anonymous caller gets 401 whatever it sent.
  app.addHook('onRequest', async (request) => {
    callers.set(request, await callerSubject(ctx, request.headers, deps.config.OIDC_COOKIE_NAME));
  });

  /** The device's current entity id, or the contract's 404. */
  async function entityOf(deviceId: number): Promise<string> {
    const device = await ctx.lookupDevice(deviceId);
    if (!device) throw new AppError('DEVICE_NOT_FOUND');
    if (!device.entityId) throw new AppError('DEVICE_ENTITY_ID_MISSING');
    return device.entityId;
  }

  app.post(
    '/api/device-logs/subscribe',
    {
      schema: {
        tags,
        summary: "Stream a device's logs to an SSE connection (idempotent)",
        body: DeviceLogSubscriptionBody,
        response: { 200: DeviceLogSubscribed, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { request_id: requestId, device_id: deviceId } = request.body;
      const entityId = await entityOf(deviceId);
      const result = await ctx.registry.subscribe({ requestId, deviceId, entityId, callerSubject: callers.get(request) ?? null });
      if (!result.ok) await refuse(ctx, deps, requestId, result.code);
      return { status: 'subscribed' as const, device_entity_id: entityId };
    },
  );

  app.post(
    '/api/device-logs/unsubscribe',
    {
      schema: {
        tags,
        summary: 'Stop streaming a device to an SSE connection',
        body: DeviceLogSubscriptionBody,
        response: { 200: DeviceLogUnsubscribed, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { request_id: requestId, device_id: deviceId } = request.body;
      // Same 404s as subscribe (contract); what is removed is what this (request_id, device_id)
      // subscribed, whatever the device's entity id is now.
      await entityOf(deviceId);
      const result = await ctx.registry.unsubscribe({ requestId, deviceId, callerSubject: callers.get(request) ?? null });
      if (!result.ok) await refuse(ctx, deps, requestId, result.code);
      return { status: 'unsubscribed' as const };
    },
  );
};

async function refuse(ctx: SseContext, deps: ApiDeps, requestId: string, code: 'NO_IDENTITY_BINDING' | 'IDENTITY_MISMATCH' | 'BINDING_EXPIRED' | 'SUBSCRIPTION_NOT_FOUND'): Promise<never> {
  if (code === 'BINDING_EXPIRED') {
    // The binding ended with the token: this pod may be the first to notice, then it closes the
    // stream. For the client the connection is simply no longer bound (contract code).
    await endExpiredBinding(ctx, requestId, deps.logger);
    throw new AppError('NO_IDENTITY_BINDING');
  }
  throw new AppError(code);
}

export default deviceLogRoutes;
