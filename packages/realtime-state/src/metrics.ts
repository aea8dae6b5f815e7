import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConnectionRegistry } from './registry.js';

export type IdentityBindingStatus = 'bound' | 'local_user' | 'no_token' | 'invalid_token' | 'verifier_unavailable';

export interface RegistryMetrics {
  /** sse_gateway_connections_total{action}: every transition (connect, replace, disconnect, stale_disconnect, gateway_gone, expired, unreachable, rejected). */
  connections: Counter<'action'>;
  /** sse_identity_binding_total{status}: outcome of binding a connect to an identity. */
  identityBinding: Counter<'status'>;
}

const byPromRegistry = new WeakMap<Registry, RegistryMetrics>();

/**
 * The registry's metrics on a process's prom-client registry (once per registry: several route
 * plugins may ask). The two gauges are read from Redis at scrape time, so every pod reports the
 * fleet-wide value (aggregate with max(), not sum()).
 */
export function registryMetrics(promRegistry: Registry, registry: ConnectionRegistry): RegistryMetrics {
  const existing = byPromRegistry.get(promRegistry);
  if (existing) return existing;
  const metrics: RegistryMetrics = {
    connections: new Counter({
      name: 'sse_gateway_connections_total',
      help: 'SSE connection transitions handled by this pod, by action',
      labelNames: ['action'],
      registers: [promRegistry],
    }),
    identityBinding: new Counter({
      name: 'sse_identity_binding_total',
      help: 'Identity bindings of connect callbacks handled by this pod, by outcome',
      labelNames: ['status'],
      registers: [promRegistry],
    }),
  };
  new Gauge({
    name: 'sse_gateway_active_connections',
    help: 'Live SSE connections of the whole fleet (read from Redis at scrape time)',
    registers: [promRegistry],
    async collect() {
      this.set(await registry.activeConnections());
    },
  });
  new Gauge({
    name: 'sse_device_log_subscriptions_active',
    help: 'Active (connection, device) log subscriptions of the whole fleet (read from Redis at scrape time)',
    registers: [promRegistry],
    async collect() {
      this.set(await registry.activeSubscriptions());
    },
  });
  registry.observe((event) => metrics.connections.inc({ action: event.action }));
  byPromRegistry.set(promRegistry, metrics);
  return metrics;
}
