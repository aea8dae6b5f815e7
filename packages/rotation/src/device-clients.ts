import type { Kysely } from 'kysely';
import { DeviceRepository, findDeviceByKey, type Database, type Device, type DevicePatch, type NewDevice } from '@iotsupport/db';
import type { IdentityProvider } from '@iotsupport/identity-provider';
import type { Logger } from '@iotsupport/observability';
import { deviceClientId, parseDeviceClientId } from './client-id.js';
import { lockDeviceClient } from './client-lock.js';
import { idpOutbox, type OutboxRow } from './idp-outbox.js';
import { withRotationColumns } from './rotation-store.js';
import { readableSecret, type SecretBox } from './secret-box.js';

export interface DeviceClientsDeps {
  db: Kysely<Database>;
  /** Undefined: no identity provider (OIDC off, or no service account outside production): plain CRUD. */
  identityProvider: IdentityProvider | undefined;
  secretBox: SecretBox;
  logger: Logger;
}

function clientIdOf(device: Pick<Device, 'device_model_code' | 'key'>): string {
  return deviceClientId(device.device_model_code, device.key);
}

/**
 * Devices and their confidential clients at the identity provider, kept in step.
 *
 * Every change that alters what the identity provider must hold (a device created or deleted, its
 * model — part of the client id — changed, a secret restored on a rotation timeout) commits an
 * `idp_outbox` row in the same transaction. Applying a row reads the desired state from PostgreSQL
 * at that moment (device exists → the client exists, with the device's current secret; no device →
 * no client), so applying it twice, late or out of order is harmless. Right after the commit the
 * caller applies its rows once; what fails (identity provider down, the process killed) the
 * worker retries every IDP_SYNC_INTERVAL_SECONDS (`applyDue`).
 */
export class DeviceClients {
  private readonly repository: DeviceRepository;

  constructor(private readonly deps: DeviceClientsDeps) {
    this.repository = new DeviceRepository(deps.db);
  }

  get enabled(): boolean {
    return this.deps.identityProvider !== undefined;
  }

  list(): Promise<Device[]> {
    return this.repository.list();
  }

  getById(id: number): Promise<Device> {
    return this.repository.getById(id);
  }

  async create(input: NewDevice): Promise<Device> {
    return this.changeWithClients(async (devices) => {
      const device = await devices.create(input);
      return { result: device, clientIds: [clientIdOf(device)] };
    });
  }

  /** A new model changes the client id: the old client goes, the new one comes with the same secret. */
  async update(id: number, patch: DevicePatch): Promise<Device> {
    return this.changeWithClients(async (devices) => {
      const before = patch.device_model_id === undefined ? undefined : await devices.getById(id);
      const after = await devices.update(id, patch);
      const clientIds = before && clientIdOf(before) !== clientIdOf(after) ? [clientIdOf(before), clientIdOf(after)] : [];
      return { result: after, clientIds };
    });
  }

  async delete(id: number): Promise<void> {
    return this.changeWithClients(async (devices) => {
      const device = await devices.getById(id);
      await devices.delete(id);
      return { result: undefined, clientIds: [clientIdOf(device)] };
    });
  }

  /**
   * A guard row for a write made while holding the client's lock (provisioning): due only after
   * `seconds`, so it is applied only if the writer died or failed in an unknown state, and the
   * writer removes it when it commits.
   */
  async guard(clientId: string, seconds: number): Promise<OutboxRow> {
    const [row] = await idpOutbox.add(this.deps.db, [clientId], seconds);
    return row!;
  }

  /** Makes a guard row due now: the worker's next pass brings the client in line (a provisioning failed). */
  async retrySoon(guard: OutboxRow): Promise<void> {
    if (!(await idpOutbox.makeDue(this.deps.db, guard.id))) await idpOutbox.add(this.deps.db, [guard.client_id]);
  }

  /** Sets the client's secret at the identity provider (inside the provisioning transaction). */
  async publishSecret(clientId: string, secret: string): Promise<void> {
    await this.deps.identityProvider?.upsertDeviceClient(clientId, secret);
  }

  /** Applies rows right after their commit; a failure is left to the worker's retry. Returns how many were applied. */
  async applyNow(rows: OutboxRow[]): Promise<number> {
    let applied = 0;
    for (const row of rows) if (await this.apply(row)) applied += 1;
    return applied;
  }

  /** The worker's retry: every due row, oldest first. */
  async applyDue(): Promise<{ applied: number; failed: number }> {
    if (!this.enabled) return { applied: 0, failed: 0 };
    const rows = await idpOutbox.due(this.deps.db);
    const applied = await this.applyNow(rows);
    return { applied, failed: rows.length - applied };
  }

  /** True while some client failed to be brought in line: rotation starts no device meanwhile. */
  async outOfStep(): Promise<boolean> {
    return this.enabled && (await idpOutbox.failing(this.deps.db)) > 0;
  }

  /** Rows waiting, and rows that failed at least once (metrics). */
  async backlog(): Promise<{ pending: number; failing: number }> {
    const [pending, failing] = await Promise.all([idpOutbox.pending(this.deps.db), idpOutbox.failing(this.deps.db)]);
    return { pending, failing };
  }

  private async changeWithClients<T>(change: (devices: DeviceRepository) => Promise<{ result: T; clientIds: string[] }>): Promise<T> {
    if (!this.enabled) return (await change(this.repository)).result;
    const { result, rows } = await this.deps.db.transaction().execute(async (trx) => {
      const { result, clientIds } = await change(new DeviceRepository(trx));
      return { result, rows: await idpOutbox.add(trx, clientIds) };
    });
    await this.applyNow(rows);
    return result;
  }

  /**
   * Brings one client in line with PostgreSQL, under the client's lock. The row is removed in the
   * same transaction, so it disappears only if the identity provider accepted the change.
   */
  private async apply(row: OutboxRow): Promise<boolean> {
    const idp = this.deps.identityProvider;
    if (!idp) return false;
    try {
      await this.deps.db.transaction().execute(async (trx) => {
        await lockDeviceClient(trx, row.client_id);
        if (!(await idpOutbox.take(trx, row.id))) return; // applied by someone else meanwhile
        const secret = await this.desiredState(trx, row.client_id);
        if (secret === 'absent') await idp.deleteDeviceClient(row.client_id);
        else await idp.upsertDeviceClient(row.client_id, secret);
      });
      this.deps.logger.info({ clientId: row.client_id }, 'device client in step with the identity provider');
      return true;
    } catch (err) {
      this.deps.logger.warn({ err, clientId: row.client_id }, 'device client not in step with the identity provider; retried later');
      await idpOutbox.recordFailure(this.deps.db, row.id, (err as Error).message).catch(() => undefined);
      return false;
    }
  }

  /** `absent`: no device has this client id; otherwise the device's secret (undefined: never provisioned, keep the provider's). */
  private async desiredState(trx: Kysely<Database>, clientId: string): Promise<'absent' | string | undefined> {
    const parsed = parseDeviceClientId(clientId);
    const device = parsed && (await findDeviceByKey(trx, parsed.key));
    if (!device || device.device_model_code !== parsed!.modelCode) return 'absent';
    const row = await withRotationColumns(trx).selectFrom('devices').select('client_secret').where('id', '=', device.id).executeTakeFirst();
    // Undefined (never provisioned, or SECRET_KEY changed): the provider keeps the secret it has.
    return readableSecret(this.deps.secretBox, row?.client_secret ?? null, device.id);
  }
}
