import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { AppError, DeviceLogSubscribeBody, DeviceLogSubscribed, DeviceLogSubscriptionBody, DeviceLogUnsubscribed, parseCursor, type StreamPosition } from '@iotsupport/contracts';
import type { ApiContext } from '../deps.js';
import { findDeviceEntity } from '../device-entity.js';
import { errorResponses } from './device-schemas.js';

/**
 * `POST /api/device-logs/subscribe` and `/unsubscribe` (public listener). Order of checks:
 * caller authentication (401) → body (400) → device (404) → the ConnectionService: the
 * connection's binding and the change itself in one atomic script (403 / 404
 * SUBSCRIPTION_NOT_FOUND), then the owner listens before the 200. Subscribe's optional `since`
 * (a stream cursor, 400 INVALID_CURSOR when it is not one) resumes the device's delivery after it
 * (docs/streams-api.md); the answer says where the device stands (`cursor`) and, with `since`,
 * whether every line after it follows (`recovered`).
 */
const deviceLogRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, deps) => {
  const { connections, identity } = deps.sse;
  const callers = new WeakMap<FastifyRequest, string | null>();
  const tags = ['device-logs'];

  // Authentication before validation: an anonymous caller gets 401 whatever it sent.
  app.addHook('onRequest', async (request) => {
    callers.set(request, await identity.callerSubject(request.headers));
  });

  /** The device's current entity id, or the contract's 404. */
  async function entityOf(deviceId: number): Promise<string> {
    const device = await findDeviceEntity(deps.db, deviceId);
    if (!device) throw new AppError('DEVICE_NOT_FOUND');
    if (!device.entityId) throw new AppError('DEVICE_ENTITY_ID_MISSING');
    return device.entityId;
  }

  app.post(
    '/api/device-logs/subscribe',
    {
      schema: {
        tags,
        summary: "Stream a device's logs to an SSE connection (idempotent), optionally resuming after a cursor",
        body: DeviceLogSubscribeBody,
        response: { 200: DeviceLogSubscribed, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { request_id: requestId, device_id: deviceId } = request.body;
      const since = sinceOf(request.body.since);
      const entityId = await entityOf(deviceId);
      const answer = await connections.subscribe({ requestId, deviceId, entityId, callerSubject: callers.get(request) ?? null, ...(since ? { since } : {}) });
      return { status: 'subscribed' as const, device_entity_id: entityId, ...answer };
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
      await connections.unsubscribe({ requestId, deviceId, callerSubject: callers.get(request) ?? null });
      return { status: 'unsubscribed' as const };
    },
  );
};

/** The body's `since` as a position; INVALID_CURSOR when it is not a cursor. */
function sinceOf(since: string | undefined): StreamPosition | undefined {
  if (since === undefined) return undefined;
  const position = parseCursor(since);
  if (!position) throw new AppError('INVALID_CURSOR');
  return position;
}

export default deviceLogRoutes;
