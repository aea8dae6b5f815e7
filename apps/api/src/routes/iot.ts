import { Type } from 'typebox';
import { AppError } from '@iotsupport/contracts';
import { findDeviceByKey, type Device } from '@iotsupport/db';
import type { ApiContext, ApiDeps, ApiRoutePlugin } from '../deps.js';
import type { Caller } from '../route-auth.js';
import { DEVICE_KEY_PATTERN } from '../schemas/device-schemas.js';
import { errorResponses } from '../schemas/error-body.js';

/**
 * Device-facing `/api/iot/*` (public listener).
 * Authentication: with OIDC on, route-auth's `device` rule (a Bearer JWT verified like a user token
 * whose `azp` is a device client id `iotdevice-<model code>-<key>`), then that device is loaded
 * here; with OIDC off, the query parameter `device_key`. Either way an unknown device is 401, never
 * 404, so the API does not tell a caller which keys exist.
 */

const DeviceKeyQuery = Type.Object(
  { device_key: Type.Optional(Type.String({ maxLength: 64, description: 'OIDC off: the device key. Ignored with OIDC on (the token says who the device is).' })) },
  { additionalProperties: true },
);

const ProvisioningJson = Type.Object(
  {
    device_key: Type.String(),
    client_id: Type.String({ description: 'iotdevice-<model code>-<key>' }),
    client_secret: Type.String({ description: 'During a rotation attempt a fresh secret (already accepted by the identity provider); otherwise the current one' }),
  },
  { additionalProperties: false },
);

/** What authentication reads of a request: the caller route-auth verified (OIDC on) or its query's `device_key` (OIDC off). */
type DeviceAuthenticator = (req: { caller: Caller | null; query: { device_key?: string } }) => Promise<Device>;

function unknownDevice(): AppError {
  return new AppError('INVALID_DEVICE_CREDENTIALS');
}

async function deviceByKey(deps: ApiDeps, key: string): Promise<Device> {
  if (!DEVICE_KEY_PATTERN.test(key)) throw unknownDevice();
  const device = await findDeviceByKey(deps.db, key);
  if (!device) throw unknownDevice();
  return device;
}

function tokenAuthenticator(deps: ApiDeps): DeviceAuthenticator {
  return async (req) => {
    // set by the routes' `device` rule, which already refused every other caller
    if (req.caller?.kind !== 'device') throw new AppError('UNAUTHORIZED');
    const { modelCode, key } = req.caller.clientId;
    const device = await deviceByKey(deps, key);
    if (device.device_model_code !== modelCode) throw unknownDevice();
    return device;
  };
}

function deviceKeyAuthenticator(deps: ApiDeps): DeviceAuthenticator {
  return async (req) => {
    const key = req.query.device_key;
    if (!key) throw new AppError('UNAUTHORIZED', 'device_key is required');
    return deviceByKey(deps, key);
  };
}

function createDeviceAuthenticator(deps: ApiContext): DeviceAuthenticator {
  // OIDC on exactly when the process has a verifier (route-auth uses the same one).
  return deps.sse.verifier ? tokenAuthenticator(deps) : deviceKeyAuthenticator(deps);
}

const iotRoutes: ApiRoutePlugin = async (app, deps) => {
  const { rotation } = deps;
  const authenticate = createDeviceAuthenticator(deps);
  const tags = ['iot'];

  app.get(
    '/api/iot/provisioning',
    {
      // No HEAD twin: fastify would run this handler for it, and a HEAD must not hand out a secret.
      exposeHeadRoute: false,
      config: { auth: 'device' },
      schema: {
        tags,
        summary:
          "The calling device's client secret: a new one during its rotation attempt (set at the identity provider first; the previous one is kept to restore on a timeout), its current one otherwise (docs/identity-provider.md). 503 IDENTITY_PROVIDER_UNAVAILABLE: nothing changed, retry later",
        querystring: DeviceKeyQuery,
        response: { 200: ProvisioningJson, ...errorResponses(401, 503) },
      },
    },
    async (req, reply) => {
      const device = await authenticate(req);
      void reply.header('cache-control', 'no-store');
      return rotation.provision(device);
    },
  );

  app.get(
    '/api/iot/config',
    {
      config: { auth: 'device' },
      schema: {
        tags,
        summary: "The calling device's config; completes its pending rotation if it fetched new credentials since the rotation started",
        querystring: DeviceKeyQuery,
        response: { 200: Type.Object({}, { additionalProperties: true }), ...errorResponses(401, 503) },
      },
    },
    async (req) => rotation.deviceConfig(await authenticate(req), 'web'),
  );
};

export default iotRoutes;
