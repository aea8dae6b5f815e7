import type { Cluster, Redis } from 'ioredis';
import { isValidRequestId } from '@iotsupport/contracts';
import { COUNT_FIELDS, CONN_FIELDS, indexKeysForRemoval, registryKeys, type RegistryKeys } from './keys.js';
import { defineRegistryScripts, type ScriptCall, type ScriptName } from './scripts.js';

/** What the connect callback records about a connection. */
export interface ConnectInput {
  requestId: string;
  token: string;
  /** Raw `request.url` of the callback. */
  url: string;
  subject: string;
  /** When the binding ends: the token's `exp` (the clock skew does not extend it), epoch ms; 0 = never (OIDC off). */
  bindingExpiresAtMs: number;
  /** POD_ID of the pod handling the callback. */
  receivedBy: string;
  /** SSE_GATEWAY_URL of that pod: the gateway that holds the stream. */
  gateway: string;
}

export interface ConnectResult {
  outcome: 'connected' | 'refreshed' | 'replaced';
  /** The replaced stream, to close at its gateway (outcome 'replaced' only). */
  replaced: { token: string; gateway: string } | null;
  /** On replacement: whether the old subscriptions carried over (same subject). */
  subscriptions: 'kept' | 'dropped' | null;
}

/** A live connection as stored: what connect recorded plus the registry's own timestamps. */
export interface ConnectionRecord extends ConnectInput {
  connectedAtMs: number;
  lastSeenAtMs: number;
  /** Every field as stored, including ones other modules add (ownership). */
  raw: Record<string, string>;
}

/**
 * Why a subscribe/unsubscribe was refused. `BINDING_EXPIRED` is internal (not a client code): the
 * connection still exists but its binding has ended, so the caller must end it (expire-binding);
 * the client is told `NO_IDENTITY_BINDING`, as for any connection that is no longer bound.
 */
export type RefusalCode = 'NO_IDENTITY_BINDING' | 'IDENTITY_MISMATCH' | 'BINDING_EXPIRED';
export type SubscribeResult = { ok: true; change: 'added' | 'unchanged' | 'moved' } | { ok: false; code: RefusalCode };
export type UnsubscribeResult = { ok: true; entityId: string } | { ok: false; code: RefusalCode | 'SUBSCRIPTION_NOT_FOUND' };
export type ExpireResult = { expired: true; token: string; gateway: string } | { expired: false; state: 'valid' | 'unknown' };
export interface ClosableConnection {
  requestId: string;
  token: string;
  gateway: string;
}

/**
 * A committed transition, for metrics and logs (`observe`). `action` is the metric label of
 * sse_gateway_connections_total.
 */
export interface RegistryEvent {
  action: 'connect' | 'replace' | 'refresh' | 'disconnect' | 'stale_disconnect' | 'gateway_gone' | 'expired' | 'unreachable';
  requestId?: string;
}

export interface SubscribeInput {
  requestId: string;
  deviceId: number;
  entityId: string;
  /** The caller's `sub`; null when there is no caller identity (OIDC off). */
  callerSubject: string | null;
  /**
   * Where delivery of the entity to this connection starts (after this stream cursor), recorded
   * in the connection's positions (`pos:<request_id>`) for whichever pod owns it. Recorded when
   * the subscription is added or moved (and the entity has no position yet), or always with
   * `always` (a resume: the caller's `since`).
   */
  start?: { cursor: string; always: boolean };
}

export interface UnsubscribeInput {
  requestId: string;
  deviceId: number;
  callerSubject: string | null;
}

/**
 * The SSE connection registry shared by every api pod: one instance per (client, prefix).
 * Every method that changes state is ONE Lua script (src/lua/<name>.lua), so a connection, its
 * token, its identity binding and both directions of its subscriptions never disagree, whatever
 * pod runs what concurrently. Times are decided by the Redis server clock.
 */
export class ConnectionRegistry {
  readonly keys: RegistryKeys;
  private readonly scripts: Record<ScriptName, ScriptCall>;
  private readonly fixedKeys: string[];
  private readonly listeners: Array<(event: RegistryEvent) => void> = [];

  constructor(
    readonly redis: Redis | Cluster,
    readonly prefix: string,
  ) {
    this.keys = registryKeys(prefix);
    this.fixedKeys = [this.keys.tokens, this.keys.counts, ...indexKeysForRemoval(this.keys)];
    this.scripts = defineRegistryScripts(redis, this.fixedKeys.length);
  }

  /** Calls `listener` after every committed transition (and for ignored disconnects). */
  observe(listener: (event: RegistryEvent) => void): void {
    this.listeners.push(listener);
  }

  protected emit(event: RegistryEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private run(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.scripts[name](...this.fixedKeys, this.keys.base, ...args);
  }

  /** connect callback: registers the connection, replacing the request_id's previous one. */
  async connect(input: ConnectInput): Promise<ConnectResult> {
    assertRequestId(input.requestId);
    const [outcome, oldToken, oldGateway, carried] = (await this.run(
      'connect',
      input.requestId,
      input.token,
      input.url,
      input.subject,
      Math.max(0, Math.floor(input.bindingExpiresAtMs)),
      input.receivedBy,
      input.gateway,
    )) as [ConnectResult['outcome'], string, string, string];
    this.emit({ action: outcome === 'connected' ? 'connect' : outcome === 'replaced' ? 'replace' : 'refresh', requestId: input.requestId });
    return {
      outcome,
      replaced: outcome === 'replaced' ? { token: oldToken, gateway: oldGateway } : null,
      subscriptions: carried === 'kept' || carried === 'dropped' ? carried : null,
    };
  }

  /** disconnect callback: removes the connection of `token`; false when the token is not current (stale). */
  async disconnect(token: string): Promise<{ removed: true; requestId: string; subscriptionsDropped: number } | { removed: false }> {
    const reply = (await this.run('disconnect', token)) as [string, string?, number?];
    if (reply[0] !== 'removed') {
      this.emit({ action: 'stale_disconnect' });
      return { removed: false };
    }
    this.emit({ action: 'disconnect', requestId: reply[1] as string });
    return { removed: true, requestId: reply[1] as string, subscriptionsDropped: Number(reply[2]) };
  }

  /** The gateway answered 404 for (requestId, token): the same clean-up as a disconnect. */
  async gatewayGone(requestId: string, token: string): Promise<{ removed: boolean; subscriptionsDropped: number }> {
    const reply = (await this.run('gateway-gone', requestId, token)) as [string, number?];
    if (reply[0] === 'removed') this.emit({ action: 'gateway_gone', requestId });
    return { removed: reply[0] === 'removed', subscriptionsDropped: Number(reply[1] ?? 0) };
  }

  async subscribe(input: SubscribeInput): Promise<SubscribeResult> {
    const start = input.start;
    const [status, detail] = (await this.run(
      'subscribe',
      input.requestId,
      String(input.deviceId),
      input.entityId,
      input.callerSubject ?? '',
      start?.cursor ?? '',
      start?.always ? '1' : '0',
    )) as [string, string];
    if (status === 'ok') return { ok: true, change: detail as 'added' | 'unchanged' | 'moved' };
    return { ok: false, code: detail as RefusalCode };
  }

  async unsubscribe(input: UnsubscribeInput): Promise<UnsubscribeResult> {
    const [status, detail] = (await this.run('unsubscribe', input.requestId, String(input.deviceId), input.callerSubject ?? '')) as [string, string];
    if (status === 'ok') return { ok: true, entityId: detail };
    return { ok: false, code: detail as RefusalCode | 'SUBSCRIPTION_NOT_FOUND' };
  }

  /** Ends the connection if its binding expired; only the first caller gets `expired: true` (and closes it). */
  async expireBinding(requestId: string): Promise<ExpireResult> {
    const reply = (await this.run('expire-binding', requestId)) as [string, string?, string?];
    if (reply[0] === 'expired') {
      this.emit({ action: 'expired', requestId });
      return { expired: true, token: reply[1] as string, gateway: reply[2] as string };
    }
    return { expired: false, state: reply[0] as 'valid' | 'unknown' };
  }

  /** Removes up to `limit` connections whose binding expired; the caller closes each at its gateway. */
  async sweepExpired(limit = 500): Promise<ClosableConnection[]> {
    const flat = (await this.run('sweep-expired', limit)) as string[];
    const out: ClosableConnection[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      out.push({ requestId: flat[i] as string, token: flat[i + 1] as string, gateway: flat[i + 2] as string });
      this.emit({ action: 'expired', requestId: flat[i] as string });
    }
    return out;
  }

  /** The gateway confirmed (requestId, token) alive (probe/send 2xx). False if the token is not current. */
  async markSeen(requestId: string, token: string): Promise<boolean> {
    return Number(await this.run('mark-seen', requestId, token)) === 1;
  }

  /** Removes (requestId, token) unless the gateway confirmed it at or after `confirmedBeforeMs`. */
  async dropUnconfirmed(requestId: string, token: string, confirmedBeforeMs: number): Promise<boolean> {
    const reply = (await this.run('drop-unconfirmed', requestId, token, Math.floor(confirmedBeforeMs))) as [string];
    if (reply[0] === 'removed') this.emit({ action: 'unreachable', requestId });
    return reply[0] === 'removed';
  }

  // ---- reads (single commands; each is consistent on its own) -----------------------------------

  async getConnection(requestId: string): Promise<ConnectionRecord | null> {
    if (!isValidRequestId(requestId)) return null;
    const raw = await this.redis.hgetall(this.keys.connection(requestId));
    if (!raw[CONN_FIELDS.token]) return null;
    const num = (f: string) => Number(raw[f] ?? 0);
    return {
      requestId,
      token: raw[CONN_FIELDS.token] as string,
      url: raw[CONN_FIELDS.url] ?? '',
      subject: raw[CONN_FIELDS.subject] ?? '',
      bindingExpiresAtMs: num(CONN_FIELDS.bindingExpiresAt),
      connectedAtMs: num(CONN_FIELDS.connectedAt),
      receivedBy: raw[CONN_FIELDS.receivedBy] ?? '',
      gateway: raw[CONN_FIELDS.gateway] ?? '',
      lastSeenAtMs: num(CONN_FIELDS.lastSeenAt),
      raw,
    };
  }

  /** request_id whose CURRENT token this is, or null. */
  async requestIdForToken(token: string): Promise<string | null> {
    return this.redis.hget(this.keys.tokens, token);
  }

  /** request_ids watching the entity (the fan-out set). */
  async watchers(entityId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.watchers(entityId));
  }

  /** entity_id → stream cursor: where the connection's delivery of each watched entity stands. */
  async positionsOf(requestId: string): Promise<Record<string, string>> {
    if (!isValidRequestId(requestId)) return {};
    return this.redis.hgetall(this.keys.positions(requestId));
  }

  /** device_id → entity_id the connection subscribed (its watched entities are the values). */
  async subscriptionsOf(requestId: string): Promise<Record<string, string>> {
    if (!isValidRequestId(requestId)) return {};
    return this.redis.hgetall(this.keys.connectionDevices(requestId));
  }

  /** Connections the gateway has not confirmed since `beforeMs`, oldest first. */
  async unconfirmedSince(beforeMs: number, limit = 500): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.byLastSeen, '-inf', `(${Math.floor(beforeMs)}`, 'LIMIT', 0, limit);
  }

  /** Fleet-wide number of live connections. */
  async activeConnections(): Promise<number> {
    return this.redis.zcard(this.keys.byLastSeen);
  }

  /** Fleet-wide number of (request_id, device_id) subscriptions. */
  async activeSubscriptions(): Promise<number> {
    return Number((await this.redis.hget(this.keys.counts, COUNT_FIELDS.subscriptions)) ?? 0);
  }
}

function assertRequestId(requestId: string): void {
  // Routes validate first (400); this guards the key layout against any other caller.
  if (!isValidRequestId(requestId)) throw new TypeError(`invalid request_id ${JSON.stringify(requestId)}`);
}
