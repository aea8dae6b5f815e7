import { Registry } from 'prom-client';
import { createLogger, type Logger } from '@iotsupport/observability';
import { createIngestMetrics, type IngestMetrics } from '../src/index.js';

export const silentLogger: Logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', app: 'ingest-test', podId: 'test' });

export function freshMetrics(): { registry: Registry; metrics: IngestMetrics } {
  const registry = new Registry();
  return { registry, metrics: createIngestMetrics(registry) };
}

/** Current value of a counter/gauge sample with exactly these labels (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const sample = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val) && Object.keys(v.labels).length === Object.keys(labels).length);
  return sample?.value ?? 0;
}
