import type { RotationState } from '@iotsupport/db';
import type { DashboardRow } from './rotation-store.js';

/**
 * The rotation dashboard's three health panels plus the inactive devices.
 *
 * Thresholds (the contract leaves them to us; docs/rotation.md repeats them):
 * - **critical**: an active device whose current secret is older than
 *   ROTATION_CRITICAL_THRESHOLD_DAYS (a device never provisioned counts from its creation),
 *   whatever its state — its credential is overdue.
 * - **warning**: an active device, not critical, whose last attempt timed out (TIMEOUT): it still
 *   has a working secret but did not take the new one and will be retried.
 * - **healthy**: every other active device (OK, QUEUED or PENDING with a fresh enough secret).
 * - **inactive**: devices switched off; never rotated, listed apart and in no panel above.
 */
export interface DashboardDevice {
  id: number;
  key: string;
  device_name: string | null;
  device_model_code: string;
  rotation_state: RotationState;
  /** Whole days since the last completed rotation; null when it never completed one. */
  days_since_rotation: number | null;
  last_rotation_completed_at: string | null;
  secret_created_at: string | null;
}

export type DashboardCategory = 'healthy' | 'warning' | 'critical' | 'inactive';

export interface Dashboard {
  healthy: DashboardDevice[];
  warning: DashboardDevice[];
  critical: DashboardDevice[];
  inactive: DashboardDevice[];
  counts: Record<DashboardCategory, number>;
}

export function categorize(row: DashboardRow, criticalThresholdDays: number): DashboardCategory {
  if (!row.active) return 'inactive';
  if (row.secret_age_days > criticalThresholdDays) return 'critical';
  if (row.rotation_state === 'TIMEOUT') return 'warning';
  return 'healthy';
}

function toDevice(row: DashboardRow): DashboardDevice {
  return {
    id: row.id,
    key: row.key,
    device_name: row.device_name,
    device_model_code: row.device_model_code,
    rotation_state: row.rotation_state,
    days_since_rotation: row.days_since_rotation,
    last_rotation_completed_at: row.last_rotation_completed_at?.toISOString() ?? null,
    secret_created_at: row.secret_created_at?.toISOString() ?? null,
  };
}

export function buildDashboard(rows: DashboardRow[], criticalThresholdDays: number): Dashboard {
  const dashboard: Dashboard = {
    healthy: [],
    warning: [],
    critical: [],
    inactive: [],
    counts: { healthy: 0, warning: 0, critical: 0, inactive: 0 },
  };
  for (const row of rows) {
    const category = categorize(row, criticalThresholdDays);
    dashboard[category].push(toDevice(row));
    dashboard.counts[category] += 1;
  }
  return dashboard;
}
