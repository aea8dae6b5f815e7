export { createLogger, type Logger } from './logger.js';
export { createMetrics, type Metrics } from './metrics.js';
export { Lifecycle, withTimeout, TimeoutError, type ReadinessCheck } from './lifecycle.js';
export { registerErrorHandler, toAppError } from './error-handler.js';
export { createHttpServer } from './http-server.js';
export { createInternalServer, registerHealthRoutes, registerMetricsRoute, type InternalServerDeps } from './internal-server.js';
export { redisReadiness, postgresReadiness, mqttReadiness, drainDelay } from './readiness-checks.js';
export {
  mqttConnectOptions,
  logConnectionErrors,
  addClientReadinessChecks,
  closeWithin,
  closeRedis,
  closeMqtt,
  CLIENT_CLOSE_MS,
  type MqttSettings,
} from './clients.js';
