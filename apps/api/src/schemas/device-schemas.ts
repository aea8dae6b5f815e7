import { Type, type Static } from 'typebox';
import { ROTATION_STATES, type Device, type DeviceModel } from '@iotsupport/db';
import { MAX_JSON_DEPTH, StorableJson, StorableString } from './storable.js';

/**
 * The JSON of the devices REST API (public listener). Field names are the database's
 * (snake_case); `cached_secret` is never part of it. Request bodies refuse unknown fields and
 * anything PostgreSQL cannot store (storable.ts); their size is bounded by the routes' bodyLimit.
 */

/** bodyLimit of a device create/update (its config is most of it). */
export const DEVICE_BODY_LIMIT = 64 * 1024;
/** bodyLimit of a device model create. */
export const DEVICE_MODEL_BODY_LIMIT = 4 * 1024;

export const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
/** A device's `key` (the database checks the same rule): 8 characters of [a-z0-9]. */
export const DEVICE_KEY_PATTERN = /^[a-z0-9]{8}$/;
const DeviceKey = Type.String({ pattern: DEVICE_KEY_PATTERN.source, description: '8 characters of [a-z0-9]; the device half of its client id' });
export const RotationStateJson = Type.Enum(ROTATION_STATES);
const ModelId = Type.Integer({ minimum: 1, maximum: 2147483647 });
/** Any storable JSON on the way in, so a non-object gets the specific 422 instead of a generic 400. */
const ConfigInput = StorableJson({
  description: `A JSON object (anything else: 422 INVALID_DEVICE_CONFIG), nested at most ${MAX_JSON_DEPTH} levels, no \\u0000 or unpaired surrogates in strings and keys (400). deviceName and deviceEntityId (strings) are copied into device_name and device_entity_id.`,
});
const ConfigOutput = Type.Object({}, { additionalProperties: true, description: 'The device config as stored' });

export const DeviceJson = Type.Object(
  {
    id: Type.Integer(),
    key: Type.String(),
    device_model_id: Type.Integer(),
    device_model_code: Type.String(),
    config: ConfigOutput,
    device_name: Type.Union([Type.String(), Type.Null()]),
    device_entity_id: Type.Union([Type.String(), Type.Null()]),
    active: Type.Boolean(),
    rotation_state: RotationStateJson,
    secret_created_at: Timestamp,
    last_rotation_attempt_at: Timestamp,
    last_rotation_completed_at: Timestamp,
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
export type DeviceJson = Static<typeof DeviceJson>;

export const CreateDeviceBody = Type.Object(
  {
    key: DeviceKey,
    device_model_id: ModelId,
    config: Type.Optional(ConfigInput),
    active: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);

/** Changes the given fields; `key` is immutable (it names the device's credentials). */
export const UpdateDeviceBody = Type.Object(
  {
    device_model_id: Type.Optional(ModelId),
    config: Type.Optional(ConfigInput),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const DeviceModelJson = Type.Object(
  { id: Type.Integer(), code: Type.String(), name: Type.String() },
  { additionalProperties: false },
);

export const CreateDeviceModelBody = Type.Object(
  {
    code: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}$', description: 'Part of device client ids: iotdevice-<code>-<key>' }),
    name: StorableString({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
);

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** The one mapping from a device row to its API JSON (drops cached_secret). */
export function toDeviceJson(d: Device): DeviceJson {
  return {
    id: d.id,
    key: d.key,
    device_model_id: d.device_model_id,
    device_model_code: d.device_model_code,
    config: d.config,
    device_name: d.device_name,
    device_entity_id: d.device_entity_id,
    active: d.active,
    rotation_state: d.rotation_state,
    secret_created_at: iso(d.secret_created_at),
    last_rotation_attempt_at: iso(d.last_rotation_attempt_at),
    last_rotation_completed_at: iso(d.last_rotation_completed_at),
    created_at: d.created_at.toISOString(),
    updated_at: d.updated_at.toISOString(),
  };
}

export function toDeviceModelJson(m: DeviceModel): Static<typeof DeviceModelJson> {
  return { id: m.id, code: m.code, name: m.name };
}
