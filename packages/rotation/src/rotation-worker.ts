import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from '@iotsupport/observability';
import type { RotationMetrics } from './metrics.js';
import type { RotationService } from './rotation-service.js';
import { ROTATION_QUEUE_NAME, rotationQueuePrefix, type RotationJobName } from './scheduling.js';

export interface RotationWorkerOptions {
  connection: ConnectionOptions;
  redisKeyPrefix: string;
  service: RotationService;
  metrics: RotationMetrics;
  logger: Logger;
  /** Stored on every job it runs (`processedBy`): which worker pod ran a slot. */
  name?: string;
  /** Called after each run (tests use it to see which slot ran where). */
  onRun?: (job: Job, result: 'success' | 'failure') => void;
}

/**
 * Consumes the rotation queue. Both jobs are idempotent state-machine steps (queue OK devices not
 * rotated since the job's slot; expire overdue PENDING, start the next), so a job BullMQ runs
 * twice — a stalled job taken over by another worker — changes nothing the first run did not.
 * Concurrency 1: the steps of one worker never race each other (other workers are handled by the
 * database, see rotation-store.ts).
 */
/** The slot a scheduler job stands for: the millis at the end of its id `repeat:<scheduler>:<millis>`. */
export function scheduledSlot(job: Pick<Job, 'id' | 'timestamp'>): Date {
  const millis = /:(\d+)$/.exec(job.id ?? '')?.[1];
  return new Date(millis ? Number(millis) : job.timestamp);
}

export function createRotationWorker(opts: RotationWorkerOptions): Worker {
  const processor = async (job: Job) => {
    const name = job.name as RotationJobName;
    const endTimer = opts.metrics.jobDuration.startTimer({ job: name });
    try {
      let result: unknown;
      if (name === 'fleet') result = await opts.service.triggerFleet('worker', scheduledSlot(job));
      else if (name === 'tick') result = await opts.service.tick('worker');
      else throw new Error(`unknown rotation job ${job.name}`);
      opts.metrics.jobRuns.inc({ result: 'success' });
      opts.onRun?.(job, 'success');
      return result;
    } catch (err) {
      opts.metrics.jobRuns.inc({ result: 'failure' });
      opts.logger.error({ err, job: job.name, jobId: job.id }, 'rotation job failed');
      opts.onRun?.(job, 'failure');
      throw err;
    } finally {
      endTimer();
    }
  };
  const worker = new Worker(ROTATION_QUEUE_NAME, processor, {
    connection: opts.connection,
    prefix: rotationQueuePrefix(opts.redisKeyPrefix),
    concurrency: 1,
    ...(opts.name ? { name: opts.name } : {}),
  });
  // An EventEmitter 'error' without a listener would crash the process; Redis blips are logged.
  worker.on('error', (err) => opts.logger.error({ err }, 'rotation worker error'));
  return worker;
}
