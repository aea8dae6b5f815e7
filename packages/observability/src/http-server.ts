import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { errorBody } from '@iotsupport/contracts';
import { registerErrorHandler, toAppError } from './error-handler.js';

/**
 * A fastify instance as every listener of ours needs it: the app's logger tagged with the listener,
 * no per-request log lines (noise at fleet scale; errors are still logged by the error handler),
 * and every error — including those fastify raises before routing, like a malformed URL, which
 * bypass setErrorHandler — answered as `{error, code}` from the one registry.
 */
export function createHttpServer(logger: Logger, listener: 'public' | 'internal'): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: logger.child({ listener }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    frameworkErrors: (error: FastifyError, _request, reply: FastifyReply) => {
      const appErr = toAppError(error);
      void reply.status(appErr.status).send(errorBody(appErr));
    },
  });
  registerErrorHandler(app);
  return app;
}
