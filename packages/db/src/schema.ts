import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * The database as kysely sees it. One interface per table, column names as in SQL (snake_case),
 * so a query reads like the migration that made the table.
 */

/** `timestamptz`: pg returns a Date; we write a Date or an SQL expression. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** Like Timestamp but filled by a database default on insert. */
export type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/**
 * `jsonb` holding the device's config object. Written as JSON text: pg would turn a JS array into
 * a Postgres array literal, so the repository always serialises explicitly.
 */
export type JsonbObject = ColumnType<JsonObject, string, string>;

export const ROTATION_STATES = ['OK', 'QUEUED', 'PENDING', 'TIMEOUT'] as const;
export type RotationState = (typeof ROTATION_STATES)[number];

export interface DeviceModelsTable {
  id: Generated<number>;
  code: string;
  name: string;
}

export interface DevicesTable {
  id: Generated<number>;
  /** char(8) of [a-z0-9]: the device's half of its client id `iotdevice-<model code>-<key>`. */
  key: string;
  device_model_id: number;
  config: JsonbObject;
  /** Copied from `config.deviceName` on every write (see device-config.ts). */
  device_name: string | null;
  /** Copied from `config.deviceEntityId` on every write; indexed, log streams are keyed by it. */
  device_entity_id: string | null;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  rotation_state: ColumnType<RotationState, RotationState | undefined, RotationState>;
  /** The previous secret, encrypted with SECRET_KEY, kept to restore on rotation timeout. */
  cached_secret: string | null;
  secret_created_at: Timestamp | null;
  last_rotation_attempt_at: Timestamp | null;
  last_rotation_completed_at: Timestamp | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

/** Device clients to bring in line at the identity provider (migration 0003, packages/rotation device-clients.ts). */
export interface IdpOutboxTable {
  id: ColumnType<string, never, never>;
  /** `iotdevice-<model code>-<key>`: what the identity provider must hold is read from `devices` when processed. */
  client_id: string;
  attempts: ColumnType<number, never, number>;
  next_attempt_at: GeneratedTimestamp;
  last_error: string | null;
  created_at: GeneratedTimestamp;
}

export interface Database {
  device_models: DeviceModelsTable;
  devices: DevicesTable;
  idp_outbox: IdpOutboxTable;
}

export type DeviceModel = Selectable<DeviceModelsTable>;
export type NewDeviceModel = Insertable<DeviceModelsTable>;
export type DeviceRow = Selectable<DevicesTable>;
export type DeviceRowUpdate = Updateable<DevicesTable>;

/** A device as the repository returns it: its row plus its model's code (for the client id). */
export type Device = DeviceRow & { device_model_code: string };
