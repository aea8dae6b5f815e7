import { Redis } from 'ioredis';
import { deleteRedisPrefix, LOCAL_REDIS_URL, uniqueId, uniqueRedisPrefix } from '@iotsupport/testkit';
import { ConnectionRegistry, readConsistentSnapshot, type ConnectInput } from '@iotsupport/realtime-state';

/** `count` registries (one Redis connection each) on a fresh prefix of the local Redis, removed at teardown. */
export function registryForTest(t: { teardown(fn: () => unknown): void }, count = 1) {
  const prefix = uniqueRedisPrefix();
  const clients = Array.from({ length: count }, () => new Redis(LOCAL_REDIS_URL));
  t.teardown(async () => {
    await deleteRedisPrefix(clients[0]!, prefix);
    for (const client of clients) client.disconnect();
  });
  const registries = clients.map((client) => new ConnectionRegistry(client, prefix));
  return { redis: clients[0]!, reg: registries[0]!, registries, consistent: () => readConsistentSnapshot(clients[0]!, prefix) };
}

/** A connect callback's input for `requestId`, with a fresh token; `over` replaces fields. */
export function connectInput(requestId: string, over: Partial<ConnectInput> = {}): ConnectInput {
  const input = { requestId, token: uniqueId(`tok-${requestId}`), url: `/events?request_id=${requestId}`, subject: 'alice' };
  return { ...input, bindingExpiresAtMs: 0, receivedBy: 'pod-a', gateway: 'http://gw-a', ...over };
}
