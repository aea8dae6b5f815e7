import { AppError, type StreamPosition } from '@iotsupport/contracts';
import type { Logger } from '@iotsupport/observability';
import type { ClosableConnection, ConnectInput, ConnectResult, ConnectionRegistry, SubscribeInput, UnsubscribeInput } from '@iotsupport/realtime-state';
import type { Forwarding } from './forwarding.js';
import { closeInBackground, type GatewayControl } from './gateway-control.js';

/** What a subscribe answers besides the entity id (DeviceLogSubscribed). */
export interface SubscribeAnswer {
  cursor: string;
  recovered?: boolean;
}

/**
 * The SSE connections' state changes, each in two explicit steps: the registry's atomic Redis
 * script (realtime-state), then the owner sync (forwarding):
 * - connect: this pod owns the new connection before the gateway's `ready` goes out; a replaced
 *   stream is forgotten by its owner and closed at its gateway;
 * - subscribe/unsubscribe that changed something: the owner (maybe another pod) listens to the
 *   entity before the caller's 200 goes out, so "subscribed" means the next batch arrives;
 * - any removal (disconnect, expired binding, sweep): the owner stops sending to it now.
 * Refusals are thrown as the contract's AppError codes.
 */
export class ConnectionService {
  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly forwarding: Forwarding,
    private readonly gateway: GatewayControl,
    private readonly logger: Logger,
  ) {}

  async connect(input: ConnectInput): Promise<ConnectResult> {
    const result = await this.registry.connect(input);
    await this.forwarding.ownNewConnection(input.requestId, input.token, result.replaced?.token ?? null);
    // The old stream is closed through the gateway that holds it (that gateway's disconnect
    // callback then finds a stale token and changes nothing).
    if (result.replaced) closeInBackground(this.gateway, result.replaced.token, result.replaced.gateway, this.logger);
    return result;
  }

  /** The gateway's disconnect callback; false when the token is not current (a replaced stream). */
  async disconnect(token: string): Promise<boolean> {
    const result = await this.registry.disconnect(token);
    if (result.removed) this.forwarding.forgetRemoved(result.requestId, token);
    return result.removed;
  }

  /**
   * Throws NO_IDENTITY_BINDING / IDENTITY_MISMATCH; an expired binding ends the connection first.
   * Delivery starts right after the device's current position (`cursor`), or after `since` when
   * the window still holds what follows it (`recovered`, docs/streams-api.md). The position is
   * read before the subscription is recorded, so no line falls between the two.
   */
  async subscribe(input: SubscribeInput & { since?: StreamPosition }): Promise<SubscribeAnswer> {
    const { since, ...subscription } = input;
    const point = await this.forwarding.streams.resumePoint(input.entityId, since);
    const resumed = point.recovered === true;
    const result = await this.registry.subscribe({ ...subscription, start: { cursor: point.start, always: resumed } });
    if (!result.ok) return this.refuse(input.requestId, result.code);
    if (since !== undefined) this.forwarding.metrics.resumes.inc({ outcome: resumed ? 'recovered' : 'not_recovered' });
    if (result.change !== 'unchanged' || resumed) {
      await this.forwarding.syncOwnerListening(input.requestId, resumed ? { entityId: input.entityId, cursor: point.start } : undefined);
    }
    return point.recovered === undefined ? { cursor: point.cursor } : { cursor: point.cursor, recovered: point.recovered };
  }

  /** As subscribe, plus SUBSCRIPTION_NOT_FOUND. */
  async unsubscribe(input: UnsubscribeInput): Promise<void> {
    const result = await this.registry.unsubscribe(input);
    if (!result.ok) return this.refuse(input.requestId, result.code);
    await this.forwarding.syncOwnerListening(input.requestId);
  }

  /**
   * Ends a connection whose binding expired, if it still exists: whichever pod gets there first
   * removes it atomically and closes the stream at its gateway (not awaited).
   */
  async expireBinding(requestId: string): Promise<void> {
    const result = await this.registry.expireBinding(requestId);
    if (!result.expired) return;
    this.forwarding.forgetRemoved(requestId, result.token);
    closeInBackground(this.gateway, result.token, result.gateway, this.logger);
  }

  // ---- the registry sweep's removals (SweepRemovals) ---------------------------------------------

  async sweepExpired(limit?: number): Promise<ClosableConnection[]> {
    const removed = await this.registry.sweepExpired(limit);
    for (const conn of removed) this.forwarding.forgetRemoved(conn.requestId, conn.token);
    return removed;
  }

  async gatewayGone(requestId: string, token: string): Promise<{ removed: boolean; subscriptionsDropped: number }> {
    const result = await this.registry.gatewayGone(requestId, token);
    if (result.removed) this.forwarding.forgetRemoved(requestId, token);
    return result;
  }

  async dropUnconfirmed(requestId: string, token: string, confirmedBeforeMs: number): Promise<boolean> {
    const removed = await this.registry.dropUnconfirmed(requestId, token, confirmedBeforeMs);
    if (removed) this.forwarding.forgetRemoved(requestId, token);
    return removed;
  }

  private async refuse(requestId: string, code: 'NO_IDENTITY_BINDING' | 'IDENTITY_MISMATCH' | 'BINDING_EXPIRED' | 'SUBSCRIPTION_NOT_FOUND'): Promise<never> {
    if (code === 'BINDING_EXPIRED') {
      // The binding ended with the token: this pod may be the first to notice, then it closes the
      // stream. For the client the connection is simply no longer bound (contract code).
      await this.expireBinding(requestId);
      throw new AppError('NO_IDENTITY_BINDING');
    }
    throw new AppError(code);
  }
}
