import { getNextMillis, Queue, type ConnectionOptions, type JobSchedulerJson } from 'bullmq';
import { withTimeout, type Logger } from '@iotsupport/observability';

/**
 * BullMQ job schedulers of rotation: `rotation-fleet` (ROTATION_CRON, queues the fleet) and
 * `rotation-tick` (every ROTATION_TICK_SECONDS: timeouts, start the next device).
 *
 * A scheduler produces one job per slot with a deterministic id (`repeat:<scheduler>:<millis>`),
 * so however many workers run, each slot is one job and BullMQ hands each job to one worker.
 * Upserts are single Lua scripts, so concurrent starts cannot create duplicates.
 */
export const ROTATION_QUEUE_NAME = 'rotation';
export const FLEET_SCHEDULER_ID = 'rotation-fleet';
export const TICK_SCHEDULER_ID = 'rotation-tick';
export type RotationJobName = 'fleet' | 'tick';

/**
 * BullMQ keys live under `<REDIS_KEY_PREFIX>:{bull}:rotation:*`: a test prefix isolates them, and the
 * `{bull}` hash tag keeps every key of the queue in one Redis Cluster slot (BullMQ's Lua needs that).
 */
export function rotationQueuePrefix(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}:{bull}`;
}

export interface ScheduleSettings {
  /** ROTATION_CRON, evaluated in UTC. */
  cron: string;
  tickSeconds: number;
}

interface DesiredScheduler {
  id: string;
  jobName: RotationJobName;
  repeat: { pattern: string; tz: string } | { every: number };
  /** A fleet run that failed is retried (it is idempotent); a failed tick just waits for the next one. */
  attempts: number;
}

function desiredSchedulers(settings: ScheduleSettings): DesiredScheduler[] {
  return [
    { id: FLEET_SCHEDULER_ID, jobName: 'fleet', repeat: { pattern: settings.cron, tz: 'UTC' }, attempts: 3 },
    { id: TICK_SCHEDULER_ID, jobName: 'tick', repeat: { every: settings.tickSeconds * 1000 }, attempts: 1 },
  ];
}

export function createRotationQueue(connection: ConnectionOptions, redisKeyPrefix: string): Queue {
  return new Queue(ROTATION_QUEUE_NAME, { connection, prefix: rotationQueuePrefix(redisKeyPrefix) });
}

export type RepairReason = 'missing' | 'settings_changed' | 'next_job_missing';

export interface Repair {
  scheduler: string;
  reason: RepairReason;
}

function sameSettings(current: JobSchedulerJson, desired: DesiredScheduler): boolean {
  if (current.name !== desired.jobName) return false;
  if ('every' in desired.repeat) return current.every === desired.repeat.every && !current.pattern;
  return current.pattern === desired.repeat.pattern && (current.tz ?? undefined) === desired.repeat.tz && !current.every;
}

/** Why the scheduler needs an upsert, or undefined when it is healthy. */
async function diagnose(queue: Queue, desired: DesiredScheduler, checkSettings: boolean): Promise<RepairReason | undefined> {
  const current = await queue.getJobScheduler(desired.id);
  if (!current) return 'missing';
  if (checkSettings && !sameSettings(current, desired)) return 'settings_changed';
  // A healthy scheduler always has the job of its next slot (delayed, waiting or active).
  if (current.next === undefined) return 'next_job_missing';
  const nextJob = await queue.getJob(`repeat:${desired.id}:${current.next}`);
  return nextJob ? undefined : 'next_job_missing';
}

/**
 * Upserts each scheduler that is missing, broken (its next job vanished) or — when
 * `checkSettings` — configured differently. Healthy schedulers are left alone, so a restart or a
 * second worker does not reset them. Returns what it repaired.
 *
 * The SchedulerWatchdog calls it with `checkSettings` until that first succeeds, then without.
 */
export async function ensureSchedulers(queue: Queue, settings: ScheduleSettings, checkSettings: boolean): Promise<Repair[]> {
  const repairs: Repair[] = [];
  for (const desired of desiredSchedulers(settings)) {
    const reason = await diagnose(queue, desired, checkSettings);
    if (!reason) continue;
    await queue.upsertJobScheduler(desired.id, desired.repeat, {
      name: desired.jobName,
      data: {},
      opts: {
        attempts: desired.attempts,
        backoff: { type: 'exponential', delay: 5000 },
        removeOnComplete: { count: 200 },
        removeOnFail: { count: 200 },
      },
    });
    repairs.push({ scheduler: desired.id, reason });
  }
  return repairs;
}

export interface SchedulerWatchdogOptions {
  queue: Queue;
  settings: ScheduleSettings;
  intervalMs: number;
  logger: Logger;
  onRepair?: (repair: Repair) => void;
}

/**
 * Keeps the schedulers in place. Its first successful check (run at once by start(), retried every
 * interval while Redis is unreachable) also applies changed settings, so a new ROTATION_CRON takes
 * effect on deploy; later checks only re-create what disappeared (flushed key, manual removal, lost
 * next job), so old and new pods of a rolling deploy do not fight over the settings. Start-up never
 * waits for it: the worker's health listener opens even while Redis is down.
 */
const STOP_WAIT_MS = 2000;

export class SchedulerWatchdog {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private settingsApplied = false;

  constructor(private readonly opts: SchedulerWatchdogOptions) {}

  start(): void {
    const tick = () => {
      this.running ??= this.check().finally(() => {
        this.running = undefined;
      });
    };
    if (this.timer) return;
    this.timer = setInterval(tick, this.opts.intervalMs);
    this.timer.unref();
    tick();
  }

  async check(): Promise<Repair[]> {
    const applying = !this.settingsApplied;
    try {
      const repairs = await ensureSchedulers(this.opts.queue, this.opts.settings, applying);
      this.settingsApplied = true;
      for (const repair of repairs) {
        if (applying) this.opts.logger.info(repair, 'rotation scheduler upserted');
        else this.opts.logger.warn(repair, 'rotation scheduler re-created by the watchdog');
        this.opts.onRepair?.(repair);
      }
      return repairs;
    } catch (err) {
      this.opts.logger.error({ err }, 'rotation scheduler check failed; retried at the next interval');
      return [];
    }
  }

  /**
   * Stops the timer and waits a little for a check in progress. One blocked on an unreachable Redis
   * is abandoned: every upsert is atomic and idempotent, and the next watchdog redoes it.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await withTimeout(this.running ?? Promise.resolve(), STOP_WAIT_MS).catch(() => undefined);
  }
}

/**
 * When the fleet job runs next: the scheduler's own next slot when it exists, else what
 * ROTATION_CRON gives from now (no worker has created the scheduler yet).
 */
export async function nextFleetRun(queue: Queue, cron: string): Promise<Date | null> {
  const scheduler = await queue.getJobScheduler(FLEET_SCHEDULER_ID);
  const next = scheduler?.next ?? getNextMillis(Date.now(), { pattern: cron, tz: 'UTC' });
  return next === undefined ? null : new Date(next);
}
