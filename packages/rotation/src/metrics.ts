import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ROTATION_STATES } from '@iotsupport/db';
import type { DeviceClients } from './device-clients.js';
import type { RotationStore } from './rotation-store.js';

export interface RotationMetrics {
  /** Contract name: one increment per job run, `result` = success | failure. */
  jobRuns: Counter<'result'>;
  jobDuration: Histogram<'job'>;
  /** Schedulers the worker (re)created: at start or by the watchdog. */
  schedulerRepairs: Counter<'scheduler' | 'reason'>;
}

export function createRotationMetrics(registry: Registry): RotationMetrics {
  return {
    jobRuns: new Counter({
      name: 'iot_rotation_job_runs_total',
      help: 'Rotation jobs run by this worker, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'iot_rotation_job_duration_seconds',
      help: 'Duration of rotation jobs, by job (fleet, tick)',
      labelNames: ['job'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    schedulerRepairs: new Counter({
      name: 'iot_rotation_scheduler_repairs_total',
      help: 'Rotation job schedulers created or re-created, by scheduler and reason (missing, settings_changed, next_job_missing)',
      labelNames: ['scheduler', 'reason'],
      registers: [registry],
    }),
  };
}

/**
 * `iot_rotation_notices_total{result="published"|"failed"}`: provisioning notices by outcome; a
 * rising `failed` means the broker is unreachable and devices are rotating only through retries.
 * Reused when already registered (the api builds its service once per app, tests build several).
 */
export function createRotationNoticeCounter(registry: Registry): Counter<'result'> {
  const name = 'iot_rotation_notices_total';
  const existing = registry.getSingleMetric(name) as Counter<'result'> | undefined;
  return (
    existing ??
    new Counter({
      name,
      help: 'MQTT provisioning notices, by result (failed: not acknowledged within the notice timeout)',
      labelNames: ['result'],
      registers: [registry],
    })
  );
}

/**
 * `iot_rotation_devices{state}`: the fleet's rotation states read from PostgreSQL at scrape time
 * (active devices per state, plus `state="inactive"`), so any worker reports the fleet-wide value.
 */
export function registerRotationStateGauge(registry: Registry, store: RotationStore): Gauge<'state'> {
  return new Gauge({
    name: 'iot_rotation_devices',
    help: 'Devices per rotation state (active devices), and inactive devices as state="inactive"',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const { counts, inactive } = await store.countByState();
      for (const state of ROTATION_STATES) this.set({ state }, counts[state]);
      this.set({ state: 'inactive' }, inactive);
    },
  });
}

/**
 * `iot_idp_outbox_rows{state="pending"|"failing"}`: device clients waiting to be brought in line
 * at the identity provider, and those that failed at least once (rotation starts nothing while
 * any is failing). Read from PostgreSQL at scrape time.
 */
export function registerIdpOutboxGauge(registry: Registry, clients: DeviceClients): Gauge<'state'> {
  return new Gauge({
    name: 'iot_idp_outbox_rows',
    help: 'Device clients not yet in step with the identity provider (pending), and those that failed at least once (failing)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const { pending, failing } = await clients.backlog();
      this.set({ state: 'pending' }, pending);
      this.set({ state: 'failing' }, failing);
    },
  });
}
