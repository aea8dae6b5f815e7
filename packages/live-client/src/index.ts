/**
 * Browser entry: no Node-only API here (the global EventSource, fetch and crypto by default).
 * Node: `@iotsupport/live-client/node`.
 */
export { createLiveClient, type LiveClient, type LiveClientStats } from './live-client.js';
export { DeviceStream, type DeviceStreamNotice, type LiveLine } from './device-stream.js';
export { SubscribeError } from './subscribe-api.js';
export type * from './types.js';
