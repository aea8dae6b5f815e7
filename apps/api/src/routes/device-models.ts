import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DeviceModelRepository } from '@iotsupport/db';
import type { ApiDeps } from '../deps.js';
import { CreateDeviceModelBody, DEVICE_MODEL_BODY_LIMIT, DeviceModelJson, toDeviceModelJson } from '../schemas/device-schemas.js';
import { errorResponses } from '../schemas/error-body.js';

/** `GET/POST /api/device-models` (public listener): users read, admins create (docs/api-auth.md). */
const deviceModelRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const models = new DeviceModelRepository(deps.db);
  const tags = ['device models'];

  app.get('/api/device-models', { config: { auth: 'user' }, schema: { tags, summary: 'Every device model, by id', response: { 200: Type.Array(DeviceModelJson) } } }, async () => {
    return (await models.list()).map(toDeviceModelJson);
  });

  app.post(
    '/api/device-models',
    {
      config: { auth: 'admin' },
      bodyLimit: DEVICE_MODEL_BODY_LIMIT,
      schema: { tags, summary: 'Create a device model', body: CreateDeviceModelBody, response: { 201: DeviceModelJson, ...errorResponses(400, 409, 413) } },
    },
    async (req, reply) => reply.status(201).send(toDeviceModelJson(await models.create(req.body))),
  );
};

export default deviceModelRoutes;
