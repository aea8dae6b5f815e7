export { GatewayClient } from './client.js';
export type { GatewayClientOptions, SendOptions, SendOutcome, SendStatus } from './types.js';
export {
  MAX_SEND_BODY_BYTES,
  DROPPED_MARKER_RESERVE_BYTES,
  MAX_TOKEN_LENGTH,
  encodeSendBody,
  escapedDataBytes,
  eventDataBudget,
  validateEvent,
  withDroppedMarker,
  type GatewayEvent,
} from './body.js';
export { GatewayBodyTooLargeError, GatewayEventDataError, GatewayReservedEventNameError } from './errors.js';
export { gatewayMetrics, type GatewayMetrics } from './metrics.js';
