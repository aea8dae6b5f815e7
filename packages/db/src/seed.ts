import type { Kysely } from 'kysely';
import { DeviceModelRepository } from './device-models.js';
import { DeviceRepository } from './devices.js';
import type { Database } from './schema.js';

/** What `make seed` puts in an empty database: one model and a few devices with entity ids. */
export const DEMO_MODEL = { code: 'demo-sensor', name: 'Demo sensor' } as const;
export const DEMO_DEVICES = [1, 2, 3].map((n) => ({
  key: `demo000${n}`,
  config: { deviceName: `Demo sensor ${n}`, deviceEntityId: `sensor.demo_${n}`, logLevel: 'info' },
}));

export interface SeedResult {
  modelCreated: boolean;
  devicesCreated: number;
}

/**
 * Idempotent: creates only what is missing (looked up by model code and device key), so it can
 * run on every `make dev` without duplicating or overwriting anything a developer changed.
 */
export async function seedDemoData(db: Kysely<Database>): Promise<SeedResult> {
  const models = new DeviceModelRepository(db);
  const devices = new DeviceRepository(db);
  let model = await models.findByCode(DEMO_MODEL.code);
  const modelCreated = !model;
  model ??= await models.create(DEMO_MODEL);
  let devicesCreated = 0;
  for (const demo of DEMO_DEVICES) {
    if (await devices.findByKey(demo.key)) continue;
    await devices.create({ key: demo.key, device_model_id: model.id, config: demo.config });
    devicesCreated += 1;
  }
  return { modelCreated, devicesCreated };
}
