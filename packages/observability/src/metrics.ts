import { Registry, collectDefaultMetrics, Gauge } from 'prom-client';

export interface Metrics {
  registry: Registry;
  shuttingDown: Gauge;
}

/**
 * One registry per process (never the prom-client global, so tests can run several apps in one
 * process without name clashes). Every app's metrics register here.
 */
export function createMetrics(app: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ app });
  collectDefaultMetrics({ register: registry });
  const shuttingDown = new Gauge({
    name: 'application_shutting_down',
    help: '1 once the process received SIGTERM and is draining, else 0',
    registers: [registry],
  });
  shuttingDown.set(0);
  return { registry, shuttingDown };
}
