import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DeviceModelRepository } from '@iotsupport/db';
import type { ApiDeps } from '../deps.js';
import { CreateDeviceModelBody, DeviceModelJson, errorResponses, toDeviceModelJson } from './device-schemas.js';

/** `GET/POST /api/device-models` (public listener). */
const deviceModelRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const models = new DeviceModelRepository(deps.db);
  const tags = ['device models'];

  app.get('/api/device-models', { schema: { tags, summary: 'Every device model, by id', response: { 200: Type.Array(DeviceModelJson) } } }, async () => {
    return (await models.list()).map(toDeviceModelJson);
  });

  app.post(
    '/api/device-models',
    { schema: { tags, summary: 'Create a device model', body: CreateDeviceModelBody, response: { 201: DeviceModelJson, ...errorResponses(400, 409) } } },
    async (req, reply) => reply.status(201).send(toDeviceModelJson(await models.create(req.body))),
  );
};

export default deviceModelRoutes;
