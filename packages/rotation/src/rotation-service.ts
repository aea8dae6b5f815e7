import type { Kysely } from 'kysely';
import { AppError } from '@iotsupport/contracts';
import type { Database, Device, JsonObject, RotationState } from '@iotsupport/db';
import { IdentityProviderRejectedError, IdentityProviderUnavailableError } from '@iotsupport/identity-provider';
import { withTimeout, type Logger } from '@iotsupport/observability';
import { deviceClientId } from './client-id.js';
import { buildDashboard, type Dashboard } from './dashboard.js';
import { DeviceClients } from './device-clients.js';
import type { NudgeSource, RotationNudger } from './nudge.js';
import type { ProvisioningNotifier } from './provisioning-notifier.js';
import { RotationStore, type RotationTarget } from './rotation-store.js';
import type { SecretBox } from './secret-box.js';

export interface RotationServiceDeps {
  db: Kysely<Database>;
  secretBox: SecretBox;
  /** Devices' clients at the identity provider; default: none (secrets stay ours alone). */
  deviceClients?: DeviceClients;
  /**
   * How long a provisioning's guard row waits before the worker may apply it: longer than the
   * provisioning's own calls to the identity provider can take, so it only ever repairs a
   * provisioning that died (default 30 s).
   */
  provisioningGuardSeconds?: number;
  notifier: ProvisioningNotifier;
  nudger: RotationNudger;
  logger: Logger;
  timeoutSeconds: number;
  criticalThresholdDays: number;
  /** When the fleet job runs next (the BullMQ scheduler's view); null when unknown. */
  nextScheduledRotation?: () => Promise<Date | null>;
  /**
   * How long an operation waits for the MQTT notice before it answers (default 5 s). A broker
   * that is down must not hold HTTP replies or the worker's tick job; the notice may still go out
   * later, and if it never does the device times out and is retried.
   */
  noticeTimeoutMs?: number;
  /** Told the outcome of each notice (metrics.ts: `iot_rotation_notices_total{result}`). */
  onNoticeResult?: (result: NoticeResult) => void;
}

/** `failed`: rejected or not acknowledged within `noticeTimeoutMs`. */
export type NoticeResult = 'published' | 'failed';

export const DEFAULT_NOTICE_TIMEOUT_MS = 5_000;

export interface RotationStatus {
  counts_by_state: Record<RotationState, number>;
  inactive: number;
  pending_device_id: number | null;
  last_rotation_completed_at: string | null;
  next_scheduled_rotation: string | null;
}

export interface ProvisioningResponse {
  device_key: string;
  client_id: string;
  client_secret: string;
}

export interface TickResult {
  expired: number[];
  started: number | null;
}

/**
 * Rotation as the api routes and the worker's jobs use it: each operation commits its state
 * change first (RotationStore), then — and only then — tells the device that entered PENDING on
 * MQTT and broadcasts `rotation-updated`. Side effects after a commit never undo it: a failed
 * notice or nudge is logged, the device times out and is retried, the next nudge refreshes the
 * dashboards. Starting the next device is itself a step after the commit it follows: when it
 * fails, what did commit is still announced and the next tick starts the device.
 */
export class RotationService {
  readonly store: RotationStore;
  /** Device CRUD that keeps the identity provider in step (the api's device routes use it). */
  readonly deviceClients: DeviceClients;

  constructor(private readonly deps: RotationServiceDeps) {
    this.deviceClients = deps.deviceClients ?? new DeviceClients({ db: deps.db, identityProvider: undefined, secretBox: deps.secretBox, logger: deps.logger });
    this.store = new RotationStore(deps.db, { idpOutbox: this.deviceClients.enabled });
  }

  /** Queues every active OK device (see RotationStore.queueFleet for `notRotatedSince`) and starts the first one. */
  async triggerFleet(source: NudgeSource, notRotatedSince?: Date): Promise<{ queued_count: number }> {
    const queued = await this.store.queueFleet(notRotatedSince);
    const started = await this.startNextAfterCommit();
    this.deps.logger.info({ queued, started: started?.id ?? null, source }, 'fleet rotation triggered');
    // A trigger always nudges, even when it queued nothing: whoever pressed the button sees fresh state.
    await this.afterCommit(started, source, true);
    return { queued_count: queued };
  }

  /** Queues one device (404/409 as AppError) and starts it when nothing else is PENDING. */
  async rotateDevice(id: number, source: NudgeSource): Promise<{ status: 'queued' | 'already_pending' }> {
    const { result, changed } = await this.store.queueDevice(id);
    // A device already QUEUED may still be waiting for a start that failed: try again.
    const started = result === 'queued' ? await this.startNextAfterCommit() : undefined;
    // "already_pending" and a device that was already QUEUED changed nothing: no nudge, so a
    // repeated click does not make every dashboard re-read an unchanged fleet.
    await this.afterCommit(started, source, changed);
    return { status: result };
  }

  /** The frequent job: expire overdue PENDING devices, then start the next one. Idempotent. */
  async tick(source: NudgeSource): Promise<TickResult> {
    const expired = await this.store.expireTimedOut(this.deps.timeoutSeconds);
    if (expired.length > 0) {
      this.deps.logger.warn({ devices: expired }, 'rotation timed out; previous secret restored');
      // The restored secrets go back to the identity provider now; what fails is retried by applyDue.
      await this.deviceClients.applyDue();
    }
    const started = await this.startNextAfterCommit();
    await this.afterCommit(started, source, expired.length > 0);
    return { expired, started: started?.id ?? null };
  }

  /**
   * `GET /api/iot/provisioning`: during the device's rotation attempt a fresh secret, set at the
   * identity provider before it is committed here; outside an attempt its current secret
   * (RotationStore.provisionSecret). Identity provider unreachable: 503 IDENTITY_PROVIDER_UNAVAILABLE
   * and nothing changed — the device keeps its working secret and the attempt times out.
   */
  async provision(device: Device): Promise<ProvisioningResponse> {
    const clientId = deviceClientId(device.device_model_code, device.key);
    const secret = await this.provisionedSecret(device.id, clientId);
    this.deps.logger.info({ deviceId: device.id, state: device.rotation_state }, 'device fetched its credentials');
    return { device_key: device.key, client_id: clientId, client_secret: secret };
  }

  private async provisionedSecret(deviceId: number, clientId: string): Promise<string> {
    const clients = this.deviceClients;
    if (!clients.enabled) return this.store.provisionSecret(deviceId, this.deps.secretBox);
    // Survives a crash between the identity provider's change and our commit, so the worker repairs it.
    const guard = await clients.guard(clientId, this.deps.provisioningGuardSeconds ?? 30);
    try {
      return await this.store.provisionSecret(deviceId, this.deps.secretBox, {
        clientId,
        guardId: guard.id,
        publish: (secret) => clients.publishSecret(clientId, secret),
      });
    } catch (err) {
      if (!(err instanceof IdentityProviderUnavailableError || err instanceof IdentityProviderRejectedError)) throw err;
      this.deps.logger[err instanceof IdentityProviderRejectedError ? 'error' : 'warn']({ err, deviceId }, 'identity provider did not take the new secret; nothing changed');
      // The provider may have applied it before failing: the worker puts back the secret we kept.
      await clients.retrySoon(guard);
      throw new AppError('IDENTITY_PROVIDER_UNAVAILABLE');
    }
  }

  /**
   * `GET /api/iot/config`: the device's config. Completes its PENDING rotation when it fetched
   * new credentials after the attempt started, then starts the next device.
   */
  async deviceConfig(device: Device, source: NudgeSource): Promise<JsonObject> {
    const completed = await this.store.completeIfProvisioned(device.id);
    if (completed) {
      this.deps.logger.info({ deviceId: device.id }, 'rotation completed');
      const started = await this.startNextAfterCommit();
      await this.afterCommit(started, source, true);
    }
    return device.config;
  }

  async status(): Promise<RotationStatus> {
    const [summary, next] = await Promise.all([this.store.countByState(), this.nextScheduled()]);
    return {
      counts_by_state: summary.counts,
      inactive: summary.inactive,
      pending_device_id: summary.pendingDeviceId,
      last_rotation_completed_at: summary.lastCompletedAt?.toISOString() ?? null,
      next_scheduled_rotation: next?.toISOString() ?? null,
    };
  }

  async dashboard(): Promise<Dashboard> {
    return buildDashboard(await this.store.dashboardRows(), this.deps.criticalThresholdDays);
  }

  private async nextScheduled(): Promise<Date | null> {
    if (!this.deps.nextScheduledRotation) return null;
    try {
      return await this.deps.nextScheduledRotation();
    } catch (err) {
      this.deps.logger.warn({ err }, 'next scheduled rotation unavailable');
      return null;
    }
  }

  /**
   * `startNext` after the caller's own commit: a failure here must not hide that commit (no
   * nudge, a 500 for a completed rotation), so it is logged and the next tick starts the device.
   */
  private async startNextAfterCommit(): Promise<RotationTarget | undefined> {
    try {
      if (await this.deviceClients.outOfStep()) {
        // The rotation waits: a device told now could not get a secret the identity provider accepts.
        this.deps.logger.warn('identity provider out of step with the database; no rotation starts until the worker repairs it');
        return undefined;
      }
      return await this.store.startNext();
    } catch (err) {
      this.deps.logger.error({ err }, 'starting the next rotation failed; the next tick retries it');
      return undefined;
    }
  }

  /**
   * Runs strictly after the caller's commits; never throws (the state change already stands).
   * The notice and the nudge go out side by side: a broker that is down delays neither the
   * dashboards nor, beyond `noticeTimeoutMs`, the caller.
   */
  private async afterCommit(started: RotationTarget | undefined, source: NudgeSource, changed: boolean): Promise<void> {
    await Promise.all([started ? this.notice(started) : undefined, started || changed ? this.nudge(source) : undefined]);
  }

  private async notice(started: RotationTarget): Promise<void> {
    const clientId = deviceClientId(started.device_model_code, started.key);
    this.deps.logger.info({ deviceId: started.id, clientId }, 'device entered PENDING');
    try {
      await withTimeout(this.deps.notifier.notify(clientId), this.deps.noticeTimeoutMs ?? DEFAULT_NOTICE_TIMEOUT_MS);
      this.deps.onNoticeResult?.('published');
    } catch (err) {
      this.deps.onNoticeResult?.('failed');
      this.deps.logger.error({ err, deviceId: started.id }, 'rotation notice not delivered; the device will time out and be retried');
    }
  }

  private async nudge(source: NudgeSource): Promise<void> {
    try {
      await this.deps.nudger.nudge(source);
    } catch (err) {
      this.deps.logger.error({ err, source }, 'rotation-updated nudge failed');
    }
  }
}
