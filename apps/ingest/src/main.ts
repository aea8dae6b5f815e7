import { loadConfigOrExit } from '@iotsupport/config';
import { startIngestService } from '@iotsupport/log-ingest';
import { Lifecycle, createInternalServer, createLogger, createMetrics } from '@iotsupport/observability';

/**
 * Composition root of the ingest deployment: MQTT `iotsupport/logsink` → Elasticsearch + Redis
 * fan-out (packages/log-ingest), and the internal listener (PORT, default 3121) with /metrics and
 * /health/*. SIGTERM: stop taking messages, finish in-flight ones, disconnect, exit 0.
 */
const config = loadConfigOrExit('ingest');
const logger = createLogger({ level: config.LOG_LEVEL, app: 'ingest', podId: config.POD_ID });
const { registry, shuttingDown } = createMetrics('ingest');
const lifecycle = new Lifecycle(logger, shuttingDown, config.GRACEFUL_SHUTDOWN_TIMEOUT);

startIngestService(config, { logger, registry, lifecycle });

const internal = createInternalServer({ logger, lifecycle, registry });
lifecycle.onShutdown('close internal listener', () => internal.close());
lifecycle.installSignalHandlers();
lifecycle.installCrashHandlers();

const address = await internal.listen({ port: config.PORT, host: config.HOST });
logger.info({ address, clientId: config.MQTT_CLIENT_ID, elasticsearch: config.ELASTICSEARCH_URL ?? null }, 'ingest started');
