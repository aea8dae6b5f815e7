import type { Cluster, Redis } from 'ioredis';
import {
  ConnectionRegistry,
  type ClosableConnection,
  type ConnectInput,
  type ConnectResult,
  type ExpireResult,
  type SubscribeInput,
  type SubscribeResult,
  type UnsubscribeInput,
  type UnsubscribeResult,
} from '@iotsupport/realtime-state';

/** What the registry tells forwarding after a transition committed (implemented by Forwarding). */
export interface ForwardingHooks {
  afterConnect(requestId: string, token: string, replacedToken: string | null): Promise<void>;
  afterSubscriptionChange(requestId: string): Promise<void>;
  afterRemoval(requestId: string, token: string): void;
}

/**
 * The connection registry as the routes use it on a pod that forwards: every transition is the
 * registry's own atomic script, and afterwards forwarding hears of it —
 * - connect: this pod owns the new connection before the gateway's `ready` goes out;
 * - subscribe/unsubscribe that changed something: the owner (maybe another pod) listens to the
 *   entity before the 200 goes out, so "subscribed" means the next batch arrives;
 * - any removal: the owner stops sending to it now.
 * A composition-root decorator: the routes keep depending on ConnectionRegistry only.
 */
export class ForwardingConnectionRegistry extends ConnectionRegistry {
  constructor(
    redis: Redis | Cluster,
    prefix: string,
    private readonly hooks: ForwardingHooks,
  ) {
    super(redis, prefix);
  }

  override async connect(input: ConnectInput): Promise<ConnectResult> {
    const result = await super.connect(input);
    await this.hooks.afterConnect(input.requestId, input.token, result.replaced?.token ?? null);
    return result;
  }

  override async subscribe(input: SubscribeInput): Promise<SubscribeResult> {
    const result = await super.subscribe(input);
    if (result.ok && result.change !== 'unchanged') await this.hooks.afterSubscriptionChange(input.requestId);
    return result;
  }

  override async unsubscribe(input: UnsubscribeInput): Promise<UnsubscribeResult> {
    const result = await super.unsubscribe(input);
    if (result.ok) await this.hooks.afterSubscriptionChange(input.requestId);
    return result;
  }

  override async disconnect(token: string): Promise<{ removed: true; requestId: string; subscriptionsDropped: number } | { removed: false }> {
    const result = await super.disconnect(token);
    if (result.removed) this.hooks.afterRemoval(result.requestId, token);
    return result;
  }

  override async gatewayGone(requestId: string, token: string): Promise<{ removed: boolean; subscriptionsDropped: number }> {
    const result = await super.gatewayGone(requestId, token);
    if (result.removed) this.hooks.afterRemoval(requestId, token);
    return result;
  }

  override async expireBinding(requestId: string): Promise<ExpireResult> {
    const result = await super.expireBinding(requestId);
    if (result.expired) this.hooks.afterRemoval(requestId, result.token);
    return result;
  }

  override async sweepExpired(limit?: number): Promise<ClosableConnection[]> {
    const removed = await super.sweepExpired(limit);
    for (const conn of removed) this.hooks.afterRemoval(conn.requestId, conn.token);
    return removed;
  }

  override async dropUnconfirmed(requestId: string, token: string, confirmedBeforeMs: number): Promise<boolean> {
    const removed = await super.dropUnconfirmed(requestId, token, confirmedBeforeMs);
    if (removed) this.hooks.afterRemoval(requestId, token);
    return removed;
  }
}
