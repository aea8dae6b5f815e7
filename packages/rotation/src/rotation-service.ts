import type { Kysely } from 'kysely';
import type { Database, Device, JsonObject, RotationState } from '@iotsupport/db';
import { withTimeout, type Logger } from '@iotsupport/observability';
import { deviceClientId } from './client-id.js';
import { buildDashboard, type Dashboard } from './dashboard.js';
import type { NudgeSource, RotationNudger } from './nudge.js';
import type { ProvisioningNotifier } from './provisioning-notifier.js';
import { RotationStore, type RotationTarget } from './rotation-store.js';
import type { SecretBox } from './secret-box.js';

export interface RotationServiceDeps {
  db: Kysely<Database>;
  secretBox: SecretBox;
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

  constructor(private readonly deps: RotationServiceDeps) {
    this.store = new RotationStore(deps.db);
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
    if (expired.length > 0) this.deps.logger.warn({ devices: expired }, 'rotation timed out; previous secret restored');
    const started = await this.startNextAfterCommit();
    await this.afterCommit(started, source, expired.length > 0);
    return { expired, started: started?.id ?? null };
  }

  /** `GET /api/iot/provisioning`: a fresh secret for the authenticated device. */
  async provision(device: Device): Promise<ProvisioningResponse> {
    const secret = await this.store.provisionSecret(device.id, this.deps.secretBox);
    this.deps.logger.info({ deviceId: device.id, state: device.rotation_state }, 'device fetched new credentials');
    return { device_key: device.key, client_id: deviceClientId(device.device_model_code, device.key), client_secret: secret };
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
