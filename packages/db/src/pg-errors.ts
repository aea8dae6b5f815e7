import { AppError, type ErrorCode } from '@iotsupport/contracts';
import { CONSTRAINTS } from './constraints.js';

/** SQLSTATE codes we translate (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';
const CHECK_VIOLATION = '23514';

/** Which client error a violated constraint means; keyed by SQLSTATE, then constraint name. */
const BY_CONSTRAINT: Record<string, Record<string, ErrorCode>> = {
  [UNIQUE_VIOLATION]: {
    [CONSTRAINTS.deviceKeyUnique]: 'DUPLICATE_DEVICE_KEY',
    [CONSTRAINTS.deviceModelCodeUnique]: 'DUPLICATE_DEVICE_MODEL_CODE',
  },
  [FOREIGN_KEY_VIOLATION]: {
    // A device written with a model id that does not exist. (Models are never deleted by the
    // API; a delete would report this constraint too, so add a separate path before adding one.)
    [CONSTRAINTS.deviceModelFk]: 'DEVICE_MODEL_NOT_FOUND',
  },
  [CHECK_VIOLATION]: {
    [CONSTRAINTS.deviceKeyFormat]: 'VALIDATION_FAILED',
    [CONSTRAINTS.deviceConfigObject]: 'INVALID_DEVICE_CONFIG',
  },
};

/** Messages more specific than the registry's, where the code alone is vague. */
const DETAIL: Record<string, string> = {
  [CONSTRAINTS.deviceKeyFormat]: 'Device key must be exactly 8 characters of [a-z0-9]',
};

interface PgErrorFields {
  code?: unknown;
  constraint?: unknown;
}

/**
 * Turns a known constraint violation from pg into the AppError a client should see; returns
 * `undefined` for anything else (which then surfaces as a 500). Matches only on the SQLSTATE and
 * the constraint name, which are stable; never on the message.
 */
export function constraintError(err: unknown): AppError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, constraint } = err as PgErrorFields;
  if (typeof code !== 'string' || typeof constraint !== 'string') return undefined;
  const mapped = BY_CONSTRAINT[code]?.[constraint];
  return mapped ? new AppError(mapped, DETAIL[constraint]) : undefined;
}

/** Runs a write and rethrows known constraint violations as AppErrors. */
export async function mapConstraintErrors<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw constraintError(err) ?? err;
  }
}
