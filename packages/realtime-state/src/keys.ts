/**
 * The Redis key layout of the SSE connection registry: every key, its type and what it holds.
 * docs/registry.md has the same table for operators, with the redis-cli commands that read it.
 *
 * Every key of one REDIS_KEY_PREFIX carries the hash tag `{rt}`, so they all hash to ONE Redis
 * Cluster slot. That is a deliberate, honest trade: a connect, a replacement or a disconnect touches
 * the connection, its token, its subscriptions and the watcher sets of every entity it watched, and
 * the sweep touches many connections at once — one slot lets each of those be a single atomic Lua
 * script (scripts compute some of these names inside, e.g. the watcher set of an entity found in a
 * connection's subscriptions; Cluster allows that because the slot is the same). The cost: the
 * registry lives on one shard. It is small (one hash + one small hash per connection, one set per
 * watched entity); log traffic itself goes over pub/sub, not through these keys.
 *
 * Names: request_id is `[A-Za-z0-9_-]{1,128}` (validated before any key is built), so
 * `conn:<rid>` and `conn:<rid>:devices` never collide. Entity ids come from device configs and may
 * contain anything (`:`, `{`, spaces): they are only ever the LAST segment of a key, and the hash
 * tag `{rt}` comes first, so an entity id can neither change the slot nor alias another key.
 * Times are epoch milliseconds (Redis server clock, `TIME`, inside scripts), readable as-is.
 */

/** Hash tag shared by every registry key (one Cluster slot per prefix; see above). */
export const REGISTRY_HASH_TAG = '{rt}';

/** Subject every connection is bound to when OIDC_ENABLED=false (contract). */
export const LOCAL_USER_SUBJECT = 'local-user';

/**
 * Fields of the connection hash `conn:<request_id>`. One constant so the scripts' ARGV order, the
 * TypeScript readers and the docs agree; the Lua scripts use the same literal names.
 */
export const CONN_FIELDS = {
  /** Gateway token (UUID) of the current connection for this request_id. */
  token: 'token',
  /** Raw `request.url` of the connect callback (path + query). */
  url: 'url',
  /** Identity the connection is bound to: the JWT `sub`, or `local-user` with OIDC off. */
  subject: 'subject',
  /**
   * When the binding ends: the access token's `exp`, epoch ms (OIDC_CLOCK_SKEW_SECONDS only applies
   * while verifying the token, it does not extend the binding); `0` = never (OIDC off).
   */
  bindingExpiresAt: 'binding_expires_at',
  /** When the connect callback was accepted, epoch ms. */
  connectedAt: 'connected_at',
  /** POD_ID of the api pod that received the connect callback. */
  receivedBy: 'received_by',
  /** SSE_GATEWAY_URL of that pod: the gateway holding the stream (per-pod topology: its own). */
  gateway: 'gateway',
  /** Last time the gateway confirmed the connection (connect, or a probe/send answered 2xx), epoch ms. */
  lastSeenAt: 'last_seen_at',
  // --- ownership (forwarding; ownership.ts, lua/take-*.lua) ---------------------------------
  // In this hash, so every removal (disconnect, replacement, expiry, 404, sweep) drops them too.
  /** Instance number of the api process that sends to this connection (the truth is `idx:owner`). */
  owner: 'owner',
  /** POD_ID of that process, for people reading the hash. */
  ownerPod: 'owner_pod',
} as const;

export type ConnField = (typeof CONN_FIELDS)[keyof typeof CONN_FIELDS];

/** Field of the `counts` hash. */
export const COUNT_FIELDS = {
  /** Active subscriptions fleet-wide: one per (request_id, device_id) pair. */
  subscriptions: 'subscriptions',
} as const;

export interface RegistryKeys {
  /** `<prefix>:{rt}` — every key below starts with it (SCAN MATCH `<prefix>:{rt}:*`). */
  readonly base: string;
  /** HASH, fields CONN_FIELDS. One per live connection. */
  connection(requestId: string): string;
  /** HASH device_id → entity_id the connection subscribed it under (connection → watched entities). */
  connectionDevices(requestId: string): string;
  /** SET of request_ids watching the entity (entity → watching connections). */
  watchers(entityId: string): string;
  /**
   * HASH entity_id → stream cursor (contracts' stream-cursor.ts): how far the connection's
   * delivery of each watched entity stands — the start a subscribe recorded, then its owner's
   * checkpoints (written with the lease renewal). Removed with the connection and its subscriptions.
   */
  positions(requestId: string): string;
  /** HASH token → request_id, for the current token of every connection only. */
  readonly tokens: string;
  /** ZSET request_id → binding_expires_at; only connections whose binding can expire (OIDC on). */
  readonly byBindingExpiry: string;
  /** ZSET request_id → last_seen_at; EVERY connection is a member (ZCARD = active connections). */
  readonly byLastSeen: string;
  /** HASH of fleet-wide counters kept exact by the scripts (COUNT_FIELDS). */
  readonly counts: string;
  /** STRING (POD_ID, with PX): the pod running this round of the liveness sweep (sse-connections registry-sweeper.ts). */
  readonly sweepLock: string;
  // --- ownership (forwarding; see ownership.ts) ----------------------------------------------
  /** ZSET request_id → instance number of its owner. Unowned connections are not members. */
  readonly byOwner: string;
  /** ZSET instance number → lease deadline (epoch ms): the live api processes. */
  readonly pods: string;
  /** STRING counter handing out instance numbers (one per api process start, never reused). */
  readonly podSeq: string;
  /** HASH instance number → JSON {pod, gateway, started_at}: who an instance is. */
  readonly podInfo: string;
  /**
   * STRING: a random name the registry gets with its first instance. A pod that finds it changed
   * or gone at a renewal knows the registry's data was lost (docs/streams-api.md, "Never silently deaf").
   */
  readonly generation: string;
}

/**
 * Every sorted-set index a connection can be a member of. The removal shared by all scripts
 * (`remove_connection` in lua/includes/common.lua) ZREMs the connection from each, in this order
 * (passed as KEYS). Add ownership indexes here.
 */
export function indexKeysForRemoval(keys: RegistryKeys): string[] {
  return [keys.byBindingExpiry, keys.byLastSeen, keys.byOwner];
}

export function registryKeys(prefix: string): RegistryKeys {
  const base = `${prefix}:${REGISTRY_HASH_TAG}`;
  return {
    base,
    connection: (requestId) => `${base}:conn:${requestId}`,
    connectionDevices: (requestId) => `${base}:conn:${requestId}:devices`,
    watchers: (entityId) => `${base}:watchers:${entityId}`,
    positions: (requestId) => `${base}:pos:${requestId}`,
    tokens: `${base}:tokens`,
    byBindingExpiry: `${base}:idx:binding-expiry`,
    byLastSeen: `${base}:idx:last-seen`,
    counts: `${base}:counts`,
    sweepLock: `${base}:sweep-lock`,
    byOwner: `${base}:idx:owner`,
    pods: `${base}:pods`,
    podSeq: `${base}:pod-seq`,
    podInfo: `${base}:pod-info`,
    generation: `${base}:generation`,
  };
}
