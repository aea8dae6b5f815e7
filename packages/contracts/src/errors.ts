/**
 * Every error a client can see, as one coded entry each (in the spirit of fastify's own
 * `errors.js`). Handlers throw `new AppError('DEVICE_NOT_FOUND')`; the central error handler
 * maps `code` to the status and the `{error, code}` body. Nothing anywhere matches on message text.
 */
export const ERRORS = {
  VALIDATION_FAILED: { status: 400, message: 'Request validation failed' },
  INVALID_JSON: { status: 400, message: 'Request body is not valid JSON' },
  INVALID_CALLBACK: { status: 400, message: 'Invalid SSE gateway callback' },
  INVALID_REQUEST_ID: { status: 400, message: 'request_id must be 1-128 characters of [A-Za-z0-9_-]' },
  INVALID_CURSOR: { status: 400, message: 'since is not a stream cursor (<epoch>:<ms>-<offset>)' },
  UNAUTHORIZED: { status: 401, message: 'Authentication required' },
  INVALID_TOKEN: { status: 401, message: 'Invalid or expired token' },
  INVALID_CALLBACK_SECRET: { status: 401, message: 'Invalid callback secret' },
  INVALID_DEVICE_CREDENTIALS: { status: 401, message: 'Unknown device or invalid device credentials' },
  NO_IDENTITY_BINDING: { status: 403, message: 'The SSE connection is unknown or not bound to an identity' },
  IDENTITY_MISMATCH: { status: 403, message: "The caller is not the SSE connection's subject" },
  NOT_FOUND: { status: 404, message: 'Route not found' },
  DEVICE_NOT_FOUND: { status: 404, message: 'Device not found' },
  DEVICE_MODEL_NOT_FOUND: { status: 404, message: 'Device model not found' },
  DEVICE_ENTITY_ID_MISSING: { status: 404, message: 'Device has no entity id' },
  SUBSCRIPTION_NOT_FOUND: { status: 404, message: 'No such subscription' },
  DUPLICATE_DEVICE_KEY: { status: 409, message: 'A device with this key already exists' },
  DUPLICATE_DEVICE_MODEL_CODE: { status: 409, message: 'A device model with this code already exists' },
  INVALID_DEVICE_CONFIG: { status: 422, message: 'Device config must be a JSON object' },
  DEVICE_INACTIVE: { status: 409, message: 'The device is inactive and cannot be rotated' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported content type' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'Service is shutting down or a dependency is unavailable' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    /** Overrides the registry's message with specifics; the code stays the contract. */
    message?: string,
    readonly details?: unknown,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.status = ERRORS[code].status;
  }
}

export interface ErrorBody {
  error: string;
  code: ErrorCode;
}

export function errorBody(err: AppError): ErrorBody {
  return { error: err.message, code: err.code };
}
