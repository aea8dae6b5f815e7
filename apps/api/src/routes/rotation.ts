import { Type } from 'typebox';
import type { ApiRoutePlugin } from '../deps.js';
import { RotationStateJson, Timestamp } from '../schemas/device-schemas.js';
import { DeviceIdParams } from '../schemas/device-id.js';
import { errorResponses } from '../schemas/error-body.js';

/**
 * `GET /api/rotation/status`, `GET /api/rotation/dashboard`, `POST /api/rotation/trigger`,
 * `POST /api/devices/:id/rotate` (public listener; users read, admins rotate: docs/api-auth.md). Every state change commits before its MQTT
 * notice and its `rotation-updated` nudge (source `web`); see docs/rotation.md.
 */

const CountsByState = Type.Object(
  { OK: Type.Integer(), QUEUED: Type.Integer(), PENDING: Type.Integer(), TIMEOUT: Type.Integer() },
  { additionalProperties: false, description: 'Active devices per rotation state' },
);

const StatusJson = Type.Object(
  {
    counts_by_state: CountsByState,
    inactive: Type.Integer({ description: 'Inactive devices (never rotated), whatever their state' }),
    pending_device_id: Type.Union([Type.Integer(), Type.Null()]),
    last_rotation_completed_at: Timestamp,
    next_scheduled_rotation: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Next run of the ROTATION_CRON fleet job (UTC)' }),
  },
  { additionalProperties: false },
);

const DashboardDeviceJson = Type.Object(
  {
    id: Type.Integer(),
    key: Type.String(),
    device_name: Type.Union([Type.String(), Type.Null()]),
    device_model_code: Type.String(),
    rotation_state: RotationStateJson,
    days_since_rotation: Type.Union([Type.Integer(), Type.Null()]),
    last_rotation_completed_at: Timestamp,
    secret_created_at: Timestamp,
  },
  { additionalProperties: false },
);

const DashboardJson = Type.Object(
  {
    healthy: Type.Array(DashboardDeviceJson),
    warning: Type.Array(DashboardDeviceJson, { description: 'Active, secret not overdue, last attempt timed out' }),
    critical: Type.Array(DashboardDeviceJson, { description: 'Active, secret older than ROTATION_CRITICAL_THRESHOLD_DAYS' }),
    inactive: Type.Array(DashboardDeviceJson),
    counts: Type.Object(
      { healthy: Type.Integer(), warning: Type.Integer(), critical: Type.Integer(), inactive: Type.Integer() },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const rotationRoutes: ApiRoutePlugin = async (app, deps) => {
  const { rotation } = deps;
  const tags = ['rotation'];

  app.get('/api/rotation/status', { config: { auth: 'user' }, schema: { tags, summary: 'Fleet rotation state at a glance', response: { 200: StatusJson } } }, async () =>
    rotation.status(),
  );

  app.get(
    '/api/rotation/dashboard',
    { config: { auth: 'user' }, schema: { tags, summary: 'Devices by credential health (thresholds: docs/rotation.md)', response: { 200: DashboardJson } } },
    async () => rotation.dashboard(),
  );

  app.post(
    '/api/rotation/trigger',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Queue every active OK device for rotation; they rotate one at a time',
        response: { 200: Type.Object({ queued_count: Type.Integer() }, { additionalProperties: false }) },
      },
    },
    async () => rotation.triggerFleet('web'),
  );

  app.post(
    '/api/devices/:id/rotate',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Queue one device for rotation',
        params: DeviceIdParams,
        response: {
          200: Type.Object({ status: Type.Union([Type.Literal('queued'), Type.Literal('already_pending')]) }, { additionalProperties: false }),
          ...errorResponses(400, 404, 409),
        },
      },
    },
    async (req) => rotation.rotateDevice(Number(req.params.id), 'web'),
  );
};

export default rotationRoutes;
