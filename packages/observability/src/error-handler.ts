import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
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

/**
 * Other client errors that fastify and its plugins raise with an HTTP status but no code we know
 * (@fastify/static: 400 for `%00`, 403 for `..%5c`, 416 for a bad range; fastify: 400 for a `QUERY`
 * without content type...): their status is kept, under the registry's code for it. A 4xx status
 * missing here becomes 400 BAD_REQUEST — still the client's fault, never a 500.
 */
const CLIENT_ERRORS_BY_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  416: 'RANGE_NOT_SATISFIABLE',
};

function clientErrorStatus(err: Partial<FastifyError> & { status?: unknown }): number | undefined {
  const status = typeof err.statusCode === 'number' ? err.statusCode : err.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/** Maps any thrown error to an AppError; errors without a known code or a 4xx status become 500 INTERNAL_ERROR. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const fe = (typeof err === 'object' && err !== null ? err : {}) as Partial<FastifyError>;
  if (fe.validation) return new AppError('VALIDATION_FAILED', fe.message);
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, fe.message);
  const status = clientErrorStatus(fe);
  if (status !== undefined) return new AppError(CLIENT_ERRORS_BY_STATUS[status] ?? 'BAD_REQUEST');
  return new AppError('INTERNAL_ERROR');
}

/**
 * The client went away before its request was read (the body stream ends with ECONNRESET): nothing
 * failed on our side. Only the request's own socket counts: an ECONNRESET from Redis or a gateway
 * with the client still there is a failure of ours.
 */
function isClientAbort(err: unknown, request: FastifyRequest): boolean {
  if (request.raw.aborted) return true;
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET' && request.raw.socket?.destroyed === true;
}

/**
 * The one place where errors become HTTP responses: `{error, code}` with the registry's status.
 * Routes throw AppError; nothing inspects message text. A 5xx is logged once, as a defect; client
 * errors and aborted requests only at debug.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    if (isClientAbort(err, request)) {
      request.log.debug('request aborted by the client');
      void reply.status(400).send(errorBody(new AppError('BAD_REQUEST')));
      return;
    }
    const appErr = toAppError(err);
    if (appErr.status >= 500) request.log.error({ err }, 'request failed');
    else request.log.debug({ code: appErr.code }, 'client error');
    void reply.status(appErr.status).send(errorBody(appErr));
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.status(404).send(errorBody(new AppError('NOT_FOUND')));
  });
}
