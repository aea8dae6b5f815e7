export { GatewayClient } from './client.js';
export type { GatewayClientConfig, GatewayClientOptions, SendOptions, SendOutcome, SendStatus } from './types.js';
export { gatewayClientOptions } from './types.js';
export { MAX_SEND_BODY_BYTES, escapedDataBytes, eventDataBudget, prepareEvent, type GatewayEvent, type PreparedEvent } from './body.js';
export { GatewayBodyTooLargeError, GatewayEventDataError, GatewayReservedEventNameError } from './errors.js';
