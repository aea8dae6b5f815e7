import { EventSource } from 'eventsource';
import { createLiveClient, type LiveClient } from './live-client.js';
import type { EventSourceConstructor, LiveClientOptions } from './types.js';

export * from './index.js';

/**
 * Node entry: the same client, with the `eventsource` package as its EventSource (Node 20 has
 * none). Cookies are not kept: pass `headers` (subscribe calls) and an `EventSource` whose fetch
 * sends credentials when the gateway's connect needs them.
 */
export function createNodeLiveClient(options: Omit<LiveClientOptions, 'EventSource'> & { EventSource?: EventSourceConstructor }): LiveClient {
  return createLiveClient({ EventSource: EventSource as unknown as EventSourceConstructor, ...options });
}
