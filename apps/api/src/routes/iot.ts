import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { accessTokenFromHeaders, type AccessTokenVerifier } from '@iotsupport/auth';
import { AppError } from '@iotsupport/contracts';
import { findDeviceByKey, type Device } from '@iotsupport/db';
import { parseDeviceClientId } from '@iotsupport/rotation';
import type { ApiContext, ApiDeps, ApiRoutePlugin } from '../deps.js';
import { DEVICE_KEY_PATTERN, errorResponses } from './device-schemas.js';

/**
 * Device-facing `/api/iot/*` (public listener).
 * Authentication: with OIDC on, a Bearer JWT verified like a user token (JWKS, asymmetric only,
 * iss/aud/exp) whose `azp` is the device's client id `iotdevice-<model code>-<key>`; with OIDC off,
 * the query parameter `device_key`. Either way an unknown device is 401, never 404, so the API does
 * not tell a caller which keys exist.
 */

const DeviceKeyQuery = Type.Object(
  { device_key: Type.Optional(Type.String({ description: 'OIDC off: the device key. Ignored with OIDC on (the token says who the device is).' })) },
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

/** What authentication reads of a request: its headers (Bearer) and its query (`device_key`). */
type DeviceAuthenticator = (req: { headers: FastifyRequest['headers']; query: { device_key?: string } }) => Promise<Device>;

function unknownDevice(): AppError {
  return new AppError('INVALID_DEVICE_CREDENTIALS');
}

async function deviceByKey(deps: ApiDeps, key: string): Promise<Device> {
  if (!DEVICE_KEY_PATTERN.test(key)) throw unknownDevice();
  const device = await findDeviceByKey(deps.db, key);
  if (!device) throw unknownDevice();
  return device;
}

function oidcAuthenticator(deps: ApiDeps, verifier: AccessTokenVerifier): DeviceAuthenticator {
  return async (req) => {
    // Devices send a Bearer header; the cookie fallback is the browsers' and harmless here.
    const token = accessTokenFromHeaders(req.headers, deps.config.OIDC_COOKIE_NAME);
    if (!token) throw new AppError('UNAUTHORIZED');
    const verified = await verifier.verifyAccessToken(token);
    const clientId = verified.azp ? parseDeviceClientId(verified.azp) : undefined;
    if (!clientId) throw new AppError('INVALID_DEVICE_CREDENTIALS', 'The token was not issued to a device client');
    const device = await deviceByKey(deps, clientId.key);
    if (device.device_model_code !== clientId.modelCode) throw unknownDevice();
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
  // The process's one verifier (and JWKS cache), the one that checks users' tokens.
  const verifier = deps.sse.verifier;
  return verifier ? oidcAuthenticator(deps, verifier) : deviceKeyAuthenticator(deps);
}

const iotRoutes: ApiRoutePlugin = async (app, deps) => {
  const { rotation } = deps;
  const authenticate = createDeviceAuthenticator(deps);
  const tags = ['iot'];

  app.get(
    '/api/iot/provisioning',
    {
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
