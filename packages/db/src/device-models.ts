import type { Kysely } from 'kysely';
import { mapConstraintErrors } from './pg-errors.js';
import type { Database, DeviceModel, NewDeviceModel } from './schema.js';

/** Device models: list, look up, create (409 DUPLICATE_DEVICE_MODEL_CODE). */
export class DeviceModelRepository {
  constructor(private readonly db: Kysely<Database>) {}

  list(): Promise<DeviceModel[]> {
    return this.db.selectFrom('device_models').selectAll().orderBy('id').execute();
  }

  findByCode(code: string): Promise<DeviceModel | undefined> {
    return this.db.selectFrom('device_models').selectAll().where('code', '=', code).executeTakeFirst();
  }

  create(input: NewDeviceModel): Promise<DeviceModel> {
    return mapConstraintErrors(() =>
      this.db.insertInto('device_models').values({ code: input.code, name: input.name }).returningAll().executeTakeFirstOrThrow(),
    );
  }
}
