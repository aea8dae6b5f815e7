import { AppError } from '@iotsupport/contracts';
import type { JsonObject } from './schema.js';

/** The config keys whose values are copied into columns (contract: "read from the config keys"). */
export const CONFIG_KEYS = { deviceName: 'deviceName', deviceEntityId: 'deviceEntityId' } as const;

export interface DerivedDeviceColumns {
  /** The config as JSON text, ready for the jsonb column. */
  config: string;
  device_name: string | null;
  device_entity_id: string | null;
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A string config value, or null when the key is absent, null or empty. Kept verbatim otherwise
 * (no trimming): the entity id must match the log field byte for byte. Other types are refused.
 */
function optionalString(config: JsonObject, key: string): string | null {
  const value = config[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new AppError('INVALID_DEVICE_CONFIG', `Device config key "${key}" must be a string`);
  return value === '' ? null : value;
}

/**
 * The one place where a device config becomes column values. Every device write goes through
 * here, so `device_name` and `device_entity_id` can never drift from the config they came from.
 * Throws 422 INVALID_DEVICE_CONFIG when the config is not a JSON object.
 */
export function deriveDeviceColumns(config: unknown): DerivedDeviceColumns {
  if (!isJsonObject(config)) throw new AppError('INVALID_DEVICE_CONFIG');
  return {
    config: JSON.stringify(config),
    device_name: optionalString(config, CONFIG_KEYS.deviceName),
    device_entity_id: optionalString(config, CONFIG_KEYS.deviceEntityId),
  };
}
