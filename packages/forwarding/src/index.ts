export { Forwarding, type ForwardingConfig, type ForwardingOptions } from './forwarding.js';
export { ForwardingConnectionRegistry, type ForwardingHooks } from './registry-hooks.js';
export type { ForwardingMetrics } from './metrics.js';
