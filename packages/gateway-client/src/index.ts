export { GatewayClient } from './client.js';
export type { GatewayClientConfig, GatewayClientOptions, SendOptions, SendOutcome, SendStatus } from './types.js';
export { gatewayClientOptions } from './types.js';
export { MAX_SEND_BODY_BYTES, cutDocument, escapedDataBytes, eventDataBudget, prepareEvent, type CutDocumentOptions, type GatewayEvent, type PreparedEvent } from './body.js';
export { GatewayBodyTooLargeError, GatewayEventDataError, GatewayReservedEventNameError } from './errors.js';
