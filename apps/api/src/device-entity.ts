import { findDeviceEntityId, type DatabaseClient } from '@iotsupport/db';

const INT4_MAX = 2_147_483_647;

/** The device's entity id (null when it has none), or null when there is no such device. */
export async function findDeviceEntity(db: DatabaseClient, deviceId: number): Promise<{ entityId: string | null } | null> {
  // ids are int4: anything else cannot exist (and must not reach PostgreSQL as an error)
  if (!Number.isSafeInteger(deviceId) || deviceId < 1 || deviceId > INT4_MAX) return null;
  return (await findDeviceEntityId(db, deviceId)) ?? null;
}
