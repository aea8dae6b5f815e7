import { Registry } from 'prom-client';
import { createLogger, type Logger } from '@iotsupport/observability';
import { createIngestMetrics, type IngestMetrics, type StoredBatchMessage } from '../src/index.js';

export const silentLogger: Logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', app: 'ingest-test', podId: 'test' });

export function freshMetrics(): { registry: Registry; metrics: IngestMetrics } {
  const registry = new Registry();
  return { registry, metrics: createIngestMetrics(registry) };
}

/** The channel message a stored batch becomes (what the append script publishes, before its position). */
export function messageText(item: StoredBatchMessage): string {
  return item.frame.beforeDocs + item.docsJson.join(',') + item.frame.afterDocs;
}
