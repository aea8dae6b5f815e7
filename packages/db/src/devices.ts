import { sql, type Kysely, type UpdateObject } from 'kysely';
import { AppError } from '@iotsupport/contracts';
import { deriveDeviceColumns } from './device-config.js';
import { mapConstraintErrors } from './pg-errors.js';
import type { Database, Device } from './schema.js';

export interface NewDevice {
  key: string;
  device_model_id: number;
  /** Any value; anything but a JSON object is refused with 422 INVALID_DEVICE_CONFIG. Default `{}`. */
  config?: unknown;
  active?: boolean;
}

/** The fields a device update may change; absent fields keep their value. `key` is immutable. */
export interface DevicePatch {
  device_model_id?: number;
  config?: unknown;
  active?: boolean;
}

/** A device row joined with its model's code, from a table expression named `d`. */
function selectDevices(db: Kysely<Database>) {
  return db
    .selectFrom('devices as d')
    .innerJoin('device_models as m', 'm.id', 'd.device_model_id')
    .selectAll('d')
    .select('m.code as device_model_code');
}

/** For other packages (rotation, device logs, iot): one device with its model code, or undefined. */
export async function findDeviceById(db: Kysely<Database>, id: number): Promise<Device | undefined> {
  return selectDevices(db).where('d.id', '=', id).executeTakeFirst();
}

/**
 * The entity id alone (every subscribe and unsubscribe asks): one indexed column, no join, and
 * none of the secret columns. `null` entity id: the device has none; undefined: no such device.
 */
export async function findDeviceEntityId(db: Kysely<Database>, id: number): Promise<{ entityId: string | null } | undefined> {
  const row = await db.selectFrom('devices').select('device_entity_id').where('id', '=', id).executeTakeFirst();
  return row && { entityId: row.device_entity_id || null };
}

/** For the device-facing API, which identifies a device by its key. */
export async function findDeviceByKey(db: Kysely<Database>, key: string): Promise<Device | undefined> {
  return selectDevices(db).where('d.key', '=', key).executeTakeFirst();
}

/**
 * Devices CRUD. Every write derives `device_name`/`device_entity_id` from the config
 * (device-config.ts) and maps constraint violations to client errors (pg-errors.ts).
 */
export class DeviceRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async list(): Promise<Device[]> {
    return selectDevices(this.db).orderBy('d.id').execute();
  }

  findById(id: number): Promise<Device | undefined> {
    return findDeviceById(this.db, id);
  }

  findByKey(key: string): Promise<Device | undefined> {
    return findDeviceByKey(this.db, key);
  }

  /** Like findById, but a missing device is 404 DEVICE_NOT_FOUND. */
  async getById(id: number): Promise<Device> {
    const device = await this.findById(id);
    if (!device) throw new AppError('DEVICE_NOT_FOUND');
    return device;
  }

  /** 409 DUPLICATE_DEVICE_KEY, 404 DEVICE_MODEL_NOT_FOUND, 422 INVALID_DEVICE_CONFIG. */
  async create(input: NewDevice): Promise<Device> {
    const derived = deriveDeviceColumns(input.config === undefined ? {} : input.config);
    return mapConstraintErrors(() =>
      // Insert and read back with the model code in one statement (a data-modifying CTE).
      this.db
        .with('d', (qb) =>
          qb
            .insertInto('devices')
            .values({ key: input.key, device_model_id: input.device_model_id, active: input.active, ...derived })
            .returningAll(),
        )
        .selectFrom('d')
        .innerJoin('device_models as m', 'm.id', 'd.device_model_id')
        .selectAll('d')
        .select('m.code as device_model_code')
        .executeTakeFirstOrThrow(),
    );
  }

  /** 404 DEVICE_NOT_FOUND or DEVICE_MODEL_NOT_FOUND, 422 INVALID_DEVICE_CONFIG. */
  async update(id: number, patch: DevicePatch): Promise<Device> {
    const changes: UpdateObject<Database, 'devices'> = { updated_at: sql`now()` };
    if (patch.device_model_id !== undefined) changes.device_model_id = patch.device_model_id;
    if (patch.active !== undefined) changes.active = patch.active;
    if (patch.config !== undefined) Object.assign(changes, deriveDeviceColumns(patch.config));
    const device = await mapConstraintErrors(() =>
      this.db
        .with('d', (qb) => qb.updateTable('devices').set(changes).where('id', '=', id).returningAll())
        .selectFrom('d')
        .innerJoin('device_models as m', 'm.id', 'd.device_model_id')
        .selectAll('d')
        .select('m.code as device_model_code')
        .executeTakeFirst(),
    );
    if (!device) throw new AppError('DEVICE_NOT_FOUND');
    return device;
  }

  /** 404 DEVICE_NOT_FOUND when there is nothing to delete. */
  async delete(id: number): Promise<void> {
    const result = await this.db.deleteFrom('devices').where('id', '=', id).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw new AppError('DEVICE_NOT_FOUND');
  }
}
