import { sql, type Kysely } from 'kysely';
import { AppError } from '@iotsupport/contracts';
import type { Database, RotationState, Timestamp } from '@iotsupport/db';
import { deviceClientId } from './client-id.js';
import { lockDeviceClient } from './client-lock.js';
import { idpOutbox } from './idp-outbox.js';
import { generateClientSecret, readableSecret, secretContext, type SecretBox } from './secret-box.js';

/**
 * The device-state transitions of credential rotation, each one transaction against PostgreSQL.
 *
 * Concurrency: several api pods and workers call these at once. Row locks (`for update`) order
 * the writes on one device; the partial unique index `devices_one_pending_idx` is the arbiter of
 * "at most one PENDING device": a transaction that loses the race gets a unique violation, rolls
 * back and reports "nothing started" — a lost race is not an error.
 *
 * Timestamps that order events across transactions use `clock_timestamp()` (the time of the
 * statement), not `now()` (the start of the transaction): a provisioning call that waited for the
 * row lock of the transaction that made the device PENDING must be stamped after it.
 */

/** Columns rotation adds to `devices` (migration 0002); merged into the db type with `withTables`. */
export interface RotationSecretColumns {
  /** The current client secret, encrypted (secret-box.ts). */
  client_secret: string | null;
  /** Creation time of `cached_secret`, restored with it. */
  cached_secret_created_at: Timestamp | null;
}

export type RotationDatabase = Database & { devices: RotationSecretColumns };

export function withRotationColumns(db: Kysely<Database>): Kysely<RotationDatabase> {
  return db.withTables<{ devices: RotationSecretColumns }>();
}

/** The other way: RotationDatabase only adds columns, so a query of the plain schema runs on it unchanged. */
function withoutRotationColumns(db: Kysely<RotationDatabase>): Kysely<Database> {
  return db as unknown as Kysely<Database>;
}

const UNIQUE_VIOLATION = '23505';
const ONE_PENDING_INDEX = 'devices_one_pending_idx';

function isLostPendingRace(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown };
  return e.code === UNIQUE_VIOLATION && e.constraint === ONE_PENDING_INDEX;
}

/** A device as a rotation notice needs it. */
export interface RotationTarget {
  id: number;
  key: string;
  device_model_code: string;
}

export type QueueDeviceResult = 'queued' | 'already_pending';

export interface RotationStoreOptions {
  /** An identity provider holds the devices' secrets: a restored secret also adds an `idp_outbox` row. */
  idpOutbox?: boolean;
}

/** How a provisioning that makes a new secret hands it to the identity provider before committing. */
export interface SecretPublication {
  clientId: string;
  /** The guard row (DeviceClients.guard) this provisioning removes when it commits. */
  guardId: string;
  /** Sets the secret at the identity provider; throwing rolls the new secret back. */
  publish(secret: string): Promise<void>;
}

export class RotationStore {
  private readonly db: Kysely<RotationDatabase>;

  constructor(
    db: Kysely<Database>,
    private readonly options: RotationStoreOptions = {},
  ) {
    this.db = withRotationColumns(db);
  }

  /**
   * Fleet trigger: every active OK device becomes QUEUED. Returns how many this call queued.
   * `notRotatedSince` (a scheduled run's slot) skips devices that completed a rotation after it,
   * so a run BullMQ repeats later does not rotate them again.
   */
  async queueFleet(notRotatedSince?: Date): Promise<number> {
    let query = this.db
      .updateTable('devices')
      .set({ rotation_state: 'QUEUED', updated_at: sql`now()` })
      .where('active', '=', true)
      .where('rotation_state', '=', 'OK');
    if (notRotatedSince) {
      query = query.where((eb) => eb.or([eb('last_rotation_completed_at', 'is', null), eb('last_rotation_completed_at', '<', notRotatedSince)]));
    }
    const rows = await query.returning('id').execute();
    return rows.length;
  }

  /**
   * Single-device rotate: OK or TIMEOUT → QUEUED; QUEUED stays QUEUED ("queued");
   * PENDING → "already_pending". 404 DEVICE_NOT_FOUND, 409 DEVICE_INACTIVE (an inactive device is
   * never started, so queuing it would only park it).
   */
  async queueDevice(id: number): Promise<{ result: QueueDeviceResult; changed: boolean }> {
    return this.db.transaction().execute(async (trx) => {
      const device = await trx
        .selectFrom('devices')
        .select(['rotation_state', 'active'])
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirst();
      if (!device) throw new AppError('DEVICE_NOT_FOUND');
      if (device.rotation_state === 'PENDING') return { result: 'already_pending', changed: false };
      if (!device.active) throw new AppError('DEVICE_INACTIVE');
      if (device.rotation_state === 'QUEUED') return { result: 'queued', changed: false };
      await trx.updateTable('devices').set({ rotation_state: 'QUEUED', updated_at: sql`now()` }).where('id', '=', id).execute();
      return { result: 'queued', changed: true };
    });
  }

  /**
   * Makes the next candidate PENDING when no device is: QUEUED devices with the oldest secret
   * first (never provisioned counts as oldest), then TIMEOUT devices by oldest attempt. Returns
   * the device that entered PENDING, or undefined when one already is, nothing is waiting, or a
   * concurrent caller won the race.
   */
  async startNext(): Promise<RotationTarget | undefined> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const pending = await trx.selectFrom('devices').select('id').where('rotation_state', '=', 'PENDING').limit(1).executeTakeFirst();
        if (pending) return undefined;
        const candidate = await trx
          .selectFrom('devices')
          .select('id')
          .where('active', '=', true)
          .where('rotation_state', 'in', ['QUEUED', 'TIMEOUT'])
          .orderBy(sql`rotation_state = 'TIMEOUT'`)
          .orderBy(sql`case when rotation_state = 'QUEUED' then secret_created_at end asc nulls first`)
          .orderBy(sql`case when rotation_state = 'TIMEOUT' then last_rotation_attempt_at end asc nulls first`)
          .orderBy('id')
          .limit(1)
          .forUpdate()
          .skipLocked()
          .executeTakeFirst();
        if (!candidate) return undefined;
        const started = await trx
          .with('d', (qb) =>
            qb
              .updateTable('devices')
              .set({ rotation_state: 'PENDING', last_rotation_attempt_at: sql`clock_timestamp()`, updated_at: sql`now()` })
              .where('id', '=', candidate.id)
              .where('rotation_state', 'in', ['QUEUED', 'TIMEOUT'])
              .returning(['id', 'key', 'device_model_id']),
          )
          .selectFrom('d')
          .innerJoin('device_models as m', 'm.id', 'd.device_model_id')
          .select(['d.id', 'd.key', 'm.code as device_model_code'])
          .executeTakeFirst();
        return started;
      });
    } catch (err) {
      if (isLostPendingRace(err)) return undefined;
      throw err;
    }
  }

  /**
   * PENDING devices whose attempt started more than `timeoutSeconds` ago become TIMEOUT. When the
   * device fetched a new secret during the attempt, the previous secret (and its age) is restored;
   * otherwise the secret never changed and nothing needs restoring. Returns the expired ids.
   */
  async expireTimedOut(timeoutSeconds: number): Promise<number[]> {
    return this.db.transaction().execute(async (trx) => {
      const fetchedDuringAttempt = sql<boolean>`coalesce(secret_created_at > last_rotation_attempt_at, false)`;
      const rows = await trx
        .updateTable('devices')
        .set({
          rotation_state: 'TIMEOUT',
          client_secret: sql`case when ${fetchedDuringAttempt} then cached_secret else client_secret end`,
          secret_created_at: sql`case when ${fetchedDuringAttempt} then cached_secret_created_at else secret_created_at end`,
          cached_secret: sql`case when ${fetchedDuringAttempt} then null else cached_secret end`,
          cached_secret_created_at: sql`case when ${fetchedDuringAttempt} then null else cached_secret_created_at end`,
          updated_at: sql`now()`,
        })
        .where('rotation_state', '=', 'PENDING')
        .where(sql<boolean>`last_rotation_attempt_at < clock_timestamp() - make_interval(secs => ${timeoutSeconds})`)
        .returning('id')
        .execute();
      const ids = rows.map((r) => r.id);
      if (this.options.idpOutbox && ids.length > 0) {
        // The identity provider must get the restored secret back (applying the row when nothing was restored is harmless).
        const clients = await trx
          .selectFrom('devices as d')
          .innerJoin('device_models as m', 'm.id', 'd.device_model_id')
          .select(['d.key', 'm.code'])
          .where('d.id', 'in', ids)
          .execute();
        await idpOutbox.add(withoutRotationColumns(trx), clients.map((c) => deviceClientId(c.code, c.key)));
      }
      return ids;
    });
  }

  /**
   * The device's client secret in clear (the only time it is ever in clear).
   *
   * During a rotation attempt (PENDING) a new secret is generated and stored; the one it replaces
   * is cached for a restore — except on a second fetch during the same attempt, where the cache
   * already holds the secret from before the attempt, the one a restore must bring back. Outside
   * an attempt the current secret is returned unchanged (a device cannot rotate at will); only a
   * device that has none yet (or one SECRET_KEY can no longer decrypt) gets a first one.
   *
   * With `publication`, a new secret is set at the identity provider before the commit, under the
   * client's lock: if that fails, nothing changes here and the guard row repairs whatever the
   * identity provider may have applied.
   */
  async provisionSecret(deviceId: number, box: SecretBox, publication?: SecretPublication): Promise<string> {
    return this.db.transaction().execute(async (trx) => {
      if (publication) await lockDeviceClient(trx, publication.clientId);
      const row = await trx
        .selectFrom('devices')
        .select([
          'rotation_state',
          'client_secret',
          sql<boolean>`coalesce(secret_created_at > last_rotation_attempt_at, false)`.as('fetched_during_attempt'),
        ])
        .where('id', '=', deviceId)
        .forUpdate()
        .executeTakeFirst();
      if (!row) throw new AppError('DEVICE_NOT_FOUND');
      const current = row.rotation_state === 'PENDING' ? undefined : readableSecret(box, row.client_secret, deviceId);
      const secret = current ?? generateClientSecret();
      if (current === undefined) {
        const keepCache = row.rotation_state === 'PENDING' && row.fetched_during_attempt;
        await trx
          .updateTable('devices')
          .set({
            client_secret: box.encrypt(secret, secretContext(deviceId)),
            secret_created_at: sql`clock_timestamp()`,
            ...(keepCache ? {} : { cached_secret: sql`client_secret`, cached_secret_created_at: sql`secret_created_at` }),
            updated_at: sql`now()`,
          })
          .where('id', '=', deviceId)
          .execute();
        await publication?.publish(secret);
      }
      if (publication) await idpOutbox.take(withoutRotationColumns(trx), publication.guardId);
      return secret;
    });
  }

  /**
   * Completes the device's PENDING rotation — only when it fetched new credentials after the
   * attempt started. One statement, so it cannot interleave with a timeout of the same device.
   * Returns whether this call completed it.
   */
  async completeIfProvisioned(deviceId: number): Promise<boolean> {
    const row = await this.db
      .updateTable('devices')
      .set({
        rotation_state: 'OK',
        last_rotation_completed_at: sql`clock_timestamp()`,
        // The previous secret is no longer needed once the device confirmed the new one.
        cached_secret: null,
        cached_secret_created_at: null,
        updated_at: sql`now()`,
      })
      .where('id', '=', deviceId)
      .where('rotation_state', '=', 'PENDING')
      .where(sql<boolean>`secret_created_at > last_rotation_attempt_at`)
      .returning('id')
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The device's current secret in clear, for the provider's read side (and tests); undefined when none. */
  async currentSecret(deviceId: number, box: SecretBox): Promise<string | undefined> {
    const row = await this.db.selectFrom('devices').select('client_secret').where('id', '=', deviceId).executeTakeFirst();
    if (!row) throw new AppError('DEVICE_NOT_FOUND');
    return row.client_secret === null ? undefined : box.decrypt(row.client_secret, secretContext(deviceId));
  }

  /** Active devices per state plus the number of inactive ones. */
  async countByState(): Promise<{ counts: Record<RotationState, number>; inactive: number; pendingDeviceId: number | null; lastCompletedAt: Date | null }> {
    const rows = await this.db
      .selectFrom('devices')
      .select(['rotation_state', 'active', sql<number>`count(*)::int`.as('n')])
      .groupBy(['rotation_state', 'active'])
      .execute();
    const counts: Record<RotationState, number> = { OK: 0, QUEUED: 0, PENDING: 0, TIMEOUT: 0 };
    let inactive = 0;
    for (const r of rows) {
      if (r.active) counts[r.rotation_state] += r.n;
      else inactive += r.n;
    }
    const summary = await this.db
      .selectFrom('devices')
      .select([
        sql<number | null>`(select id from devices where rotation_state = 'PENDING' limit 1)`.as('pending_id'),
        sql<Date | null>`max(last_rotation_completed_at)`.as('last_completed_at'),
      ])
      .executeTakeFirstOrThrow();
    return { counts, inactive, pendingDeviceId: summary.pending_id, lastCompletedAt: summary.last_completed_at };
  }

  /** Every device with what the dashboard classifies it by; ages computed by the database clock. */
  async dashboardRows(): Promise<DashboardRow[]> {
    return this.db
      .selectFrom('devices as d')
      .innerJoin('device_models as m', 'm.id', 'd.device_model_id')
      .select([
        'd.id',
        'd.key',
        'd.device_name',
        'm.code as device_model_code',
        'd.rotation_state',
        'd.active',
        'd.last_rotation_completed_at',
        'd.secret_created_at',
        sql<number | null>`floor(extract(epoch from (now() - d.last_rotation_completed_at)) / 86400)::int`.as('days_since_rotation'),
        sql<number>`(extract(epoch from (now() - coalesce(d.secret_created_at, d.created_at))) / 86400)::float8`.as('secret_age_days'),
      ])
      .orderBy('d.id')
      .execute();
  }
}

export interface DashboardRow {
  id: number;
  key: string;
  device_name: string | null;
  device_model_code: string;
  rotation_state: RotationState;
  active: boolean;
  last_rotation_completed_at: Date | null;
  secret_created_at: Date | null;
  days_since_rotation: number | null;
  secret_age_days: number;
}
