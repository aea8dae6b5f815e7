export { createSseConnections, type ForwardingTuning, type SseConnections, type SseConnectionsOptions } from './create-sse-connections.js';
export { ConnectionService } from './connection-service.js';
export { CallerIdentity, type ConnectionIdentity } from './connection-identity.js';
export { ConnectionUpkeep } from './connection-upkeep.js';
export { Forwarding, type ForwardingConfig, type ForwardingOptions } from './forwarding.js';
export { gatewayControlOver, closeInBackground, type GatewayControl, type GatewayProbeAnswer } from './gateway-control.js';
export { RegistrySweeper, type SweepRemovals, type SweeperOptions, type SweepReport } from './registry-sweeper.js';
export type { ForwardingMetrics } from './metrics.js';
