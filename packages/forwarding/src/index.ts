export { Forwarding, type ForwardingConfig, type ForwardingOptions } from './forwarding.js';
export { ForwardingConnectionRegistry, type ForwardingHooks } from './registry-hooks.js';
export { publishRotationNudge, type Publisher } from './rotation-nudge.js';
export { deviceLogEventData, DEVICE_LOGS_EVENT } from './log-events.js';
export { ROTATION_UPDATED_EVENT } from './log-fanout.js';
export { forwardingMetrics, type ForwardingMetrics } from './metrics.js';
