import { Redis } from 'ioredis';
import { deleteRedisPrefix, LOCAL_REDIS_URL, uniqueRedisPrefix } from '@iotsupport/testkit';
import { ConnectionRegistry, readConsistentSnapshot, type ConnectInput, type RegistrySnapshot } from '../src/index.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A registry on its own prefix of the local Redis; everything is removed at teardown. */
export function registryForTest(t: Teardown, clients = 1) {
  const prefix = uniqueRedisPrefix();
  const redis = Array.from({ length: clients }, () => new Redis(LOCAL_REDIS_URL));
  const registries = redis.map((r) => new ConnectionRegistry(r, prefix));
  const admin = redis[0] as Redis;
  t.teardown(async () => {
    await deleteRedisPrefix(admin, prefix);
    for (const r of redis) r.disconnect();
  });
  return {
    prefix,
    redis: admin,
    reg: registries[0] as ConnectionRegistry,
    registries,
    /** The snapshot, after asserting every cross-key invariant holds. */
    consistent: (): Promise<RegistrySnapshot> => readConsistentSnapshot(admin, prefix),
  };
}

let tokenSeq = 0;
export function connectInput(requestId: string, over: Partial<ConnectInput> = {}): ConnectInput {
  tokenSeq += 1;
  return {
    requestId,
    token: `tok-${requestId}-${tokenSeq}`,
    url: `/events?request_id=${requestId}`,
    subject: 'alice',
    bindingExpiresAtMs: 0,
    receivedBy: 'pod-a',
    gateway: 'http://gw-a',
    ...over,
  };
}
