import type { Redis } from 'ioredis';
import { COUNT_FIELDS, registryKeys } from './keys.js';

/** The whole registry of one prefix, as plain data. */
export interface RegistrySnapshot {
  /** request_id → connection hash. */
  connections: Record<string, Record<string, string>>;
  /** request_id → (device_id → entity_id); connections without subscriptions are absent. */
  devices: Record<string, Record<string, string>>;
  /** entity_id → sorted request_ids; empty sets are absent (Redis deletes them). */
  watchers: Record<string, string[]>;
  /** token → request_id. */
  tokens: Record<string, string>;
  /** request_id → score. */
  bindingExpiry: Record<string, number>;
  lastSeen: Record<string, number>;
  /** request_id → owner instance (idx:owner, ownership.ts). */
  owners: Record<string, number>;
  /** request_id → (entity_id → stream cursor); connections without positions are absent. */
  positions: Record<string, Record<string, string>>;
  subscriptionCount: number;
  /** Keys under the base that are none of the above (should always be empty). */
  unknownKeys: string[];
}

/**
 * Reads every registry key of a prefix with SCAN. For tests, debugging and the docs' examples —
 * not for request paths (it walks the whole keyspace of the prefix).
 */
export async function readRegistrySnapshot(redis: Redis, prefix: string): Promise<RegistrySnapshot> {
  const keys = registryKeys(prefix);
  const snap: RegistrySnapshot = {
    connections: {},
    devices: {},
    watchers: {},
    tokens: {},
    bindingExpiry: {},
    lastSeen: {},
    owners: {},
    positions: {},
    subscriptionCount: 0,
    unknownKeys: [],
  };
  const all: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${keys.base.replace(/[{}[\]*?\\]/g, '\\$&')}:*`, 'COUNT', 1000);
    all.push(...batch);
    cursor = next;
  } while (cursor !== '0');

  const connPrefix = `${keys.base}:conn:`;
  const watchersPrefix = `${keys.base}:watchers:`;
  const positionsPrefix = `${keys.base}:pos:`;
  for (const key of all) {
    if (key === keys.tokens) snap.tokens = await redis.hgetall(key);
    else if (key === keys.counts) snap.subscriptionCount = Number((await redis.hget(key, COUNT_FIELDS.subscriptions)) ?? 0);
    else if (key === keys.byBindingExpiry) snap.bindingExpiry = await zsetToRecord(redis, key);
    else if (key === keys.byLastSeen) snap.lastSeen = await zsetToRecord(redis, key);
    else if (key === keys.byOwner) snap.owners = await zsetToRecord(redis, key);
    else if (key === keys.pods || key === keys.podSeq || key === keys.podInfo || key === keys.sweepLock || key === keys.generation) continue; // per process or registry, not per connection
    else if (key.startsWith(positionsPrefix)) snap.positions[key.slice(positionsPrefix.length)] = await redis.hgetall(key);
    else if (key.startsWith(watchersPrefix)) snap.watchers[key.slice(watchersPrefix.length)] = (await redis.smembers(key)).sort();
    else if (key.startsWith(connPrefix) && key.endsWith(':devices')) snap.devices[key.slice(connPrefix.length, -':devices'.length)] = await redis.hgetall(key);
    else if (key.startsWith(connPrefix)) snap.connections[key.slice(connPrefix.length)] = await redis.hgetall(key);
    else snap.unknownKeys.push(key);
  }
  return snap;
}

async function zsetToRecord(redis: Redis, key: string): Promise<Record<string, number>> {
  const flat = await redis.zrange(key, 0, -1, 'WITHSCORES');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = Number(flat[i + 1]);
  return out;
}

/**
 * Every invariant that must hold between the registry's keys, whatever ran concurrently.
 * Returns the violations (empty = consistent). Used by tests after every step.
 */
export function registryViolations(s: RegistrySnapshot): string[] {
  const v: string[] = [];
  if (s.unknownKeys.length) v.push(`unknown keys: ${s.unknownKeys.join(', ')}`);
  for (const [rid, c] of Object.entries(s.connections)) {
    if (!c.token) v.push(`conn ${rid} without token`);
    else if (s.tokens[c.token] !== rid) v.push(`conn ${rid} token ${c.token} not indexed`);
    if (!c.subject) v.push(`conn ${rid} without subject`);
    if (s.lastSeen[rid] === undefined) v.push(`conn ${rid} missing from last-seen index`);
    const exp = Number(c.binding_expires_at ?? 0);
    if (exp > 0 ? s.bindingExpiry[rid] !== exp : s.bindingExpiry[rid] !== undefined) v.push(`conn ${rid} binding-expiry index wrong`);
  }
  for (const [token, rid] of Object.entries(s.tokens)) {
    if (s.connections[rid]?.token !== token) v.push(`token ${token} → ${rid} but that connection has another token`);
  }
  for (const [rid, owner] of Object.entries(s.owners)) {
    if (s.connections[rid] && s.connections[rid].owner !== String(owner)) v.push(`conn ${rid} owner field ≠ owner index ${owner}`);
  }
  for (const rid of [...Object.keys(s.lastSeen), ...Object.keys(s.bindingExpiry), ...Object.keys(s.owners)]) {
    if (!s.connections[rid]) v.push(`index entry ${rid} without connection`);
  }
  for (const [rid, positions] of Object.entries(s.positions)) {
    if (!s.connections[rid]) v.push(`positions of ${rid} without connection`);
    const watched = new Set(Object.values(s.devices[rid] ?? {}));
    for (const eid of Object.keys(positions)) if (!watched.has(eid)) v.push(`position of ${rid} for ${JSON.stringify(eid)}, which it does not watch`);
  }
  let pairs = 0;
  const expectedWatchers: Record<string, Set<string>> = {};
  for (const [rid, devs] of Object.entries(s.devices)) {
    if (!s.connections[rid]) v.push(`subscriptions of ${rid} without connection`);
    for (const eid of Object.values(devs)) {
      pairs += 1;
      (expectedWatchers[eid] ??= new Set()).add(rid);
    }
  }
  if (pairs !== s.subscriptionCount) v.push(`subscription counter ${s.subscriptionCount} ≠ ${pairs} subscriptions`);
  const eids = new Set([...Object.keys(expectedWatchers), ...Object.keys(s.watchers)]);
  for (const eid of eids) {
    const want = [...(expectedWatchers[eid] ?? [])].sort().join(',');
    const have = (s.watchers[eid] ?? []).join(',');
    if (want !== have) v.push(`watchers of ${JSON.stringify(eid)}: have [${have}] want [${want}]`);
  }
  return v;
}

/** The registry's whole state, after checking every invariant: throws listing the violations. */
export async function readConsistentSnapshot(redis: Redis, prefix: string): Promise<RegistrySnapshot> {
  const snap = await readRegistrySnapshot(redis, prefix);
  const violations = registryViolations(snap);
  if (violations.length) throw new Error(`registry inconsistent:\n${violations.join('\n')}`);
  return snap;
}
