import { Type } from 'typebox';
import type { ApiRoutePlugin } from '../deps.js';
import { CreateDeviceBody, DEVICE_BODY_LIMIT, DeviceJson, UpdateDeviceBody, toDeviceJson } from '../schemas/device-schemas.js';
import { DeviceIdParams } from '../schemas/device-id.js';
import { errorResponses } from '../schemas/error-body.js';

/** `GET/POST /api/devices`, `GET/PUT/DELETE /api/devices/:id` (public listener): users read, admins change (docs/api-auth.md). */
const deviceRoutes: ApiRoutePlugin = async (app, deps) => {
  // Create, model change and delete keep the device's client at the identity provider in step.
  const devices = deps.rotation.deviceClients;
  const tags = ['devices'];

  app.get('/api/devices', { config: { auth: 'user' }, schema: { tags, summary: 'Every device, by id', response: { 200: Type.Array(DeviceJson) } } }, async () => {
    return (await devices.list()).map(toDeviceJson);
  });

  app.post(
    '/api/devices',
    { config: { auth: 'admin' }, bodyLimit: DEVICE_BODY_LIMIT, schema: { tags, summary: 'Create a device', body: CreateDeviceBody, response: { 201: DeviceJson, ...errorResponses(400, 404, 409, 413, 422) } } },
    async (req, reply) => {
      const device = await devices.create(req.body);
      return reply.status(201).send(toDeviceJson(device));
    },
  );

  app.get(
    '/api/devices/:id',
    { config: { auth: 'user' }, schema: { tags, summary: 'One device', params: DeviceIdParams, response: { 200: DeviceJson, ...errorResponses(400, 404) } } },
    async (req) => toDeviceJson(await devices.getById(Number(req.params.id))),
  );

  app.put(
    '/api/devices/:id',
    {
      config: { auth: 'admin' },
      bodyLimit: DEVICE_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Change the given fields of a device (key is immutable)',
        params: DeviceIdParams,
        body: UpdateDeviceBody,
        response: { 200: DeviceJson, ...errorResponses(400, 404, 413, 422) },
      },
    },
    async (req) => toDeviceJson(await devices.update(Number(req.params.id), req.body)),
  );

  app.delete(
    '/api/devices/:id',
    { config: { auth: 'admin' }, schema: { tags, summary: 'Delete a device', params: DeviceIdParams, response: { 204: Type.Null(), ...errorResponses(400, 404) } } },
    async (req, reply) => {
      await devices.delete(Number(req.params.id));
      return reply.status(204).send(null);
    },
  );
};

export default deviceRoutes;
