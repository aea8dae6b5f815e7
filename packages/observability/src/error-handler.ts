import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError, errorBody, type ErrorCode } from '@iotsupport/contracts';

/** fastify's own client errors, by their stable `code`, onto our registry. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
  FST_ERR_BAD_URL: 'VALIDATION_FAILED',
};

/** Maps any thrown error to an AppError; unknown errors become 500 INTERNAL_ERROR. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const fe = err as Partial<FastifyError>;
  if (fe.validation) return new AppError('VALIDATION_FAILED', fe.message);
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, fe.message);
  return new AppError('INTERNAL_ERROR');
}

/**
 * The one place where errors become HTTP responses: `{error, code}` with the registry's status.
 * Routes throw AppError; nothing inspects message text.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const appErr = toAppError(err);
    if (appErr.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.debug({ code: appErr.code }, 'client error');
    void reply.status(appErr.status).send(errorBody(appErr));
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.status(404).send(errorBody(new AppError('NOT_FOUND')));
  });
}
