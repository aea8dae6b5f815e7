import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { entityIdFromLogChannel, logChannelName, rotationNudgeChannel } from '@iotsupport/contracts';
import { GatewayClient, gatewayClientOptions, type GatewayClientConfig } from '@iotsupport/gateway-client';
import { streamRetention, type RetentionSettings } from '@iotsupport/log-stream';
import { withTimeout, type Logger } from '@iotsupport/observability';
import { ConnectionRegistry, OwnershipStore, type GatewayTopology, type OwnedConnection } from '@iotsupport/realtime-state';
import { FleetSync, fleetChannel, parseNotice, podChannel, type FleetNotice, type StartAfter } from './fleet-sync.js';
import { DeviceLogListener } from './device-log-listener.js';
import { DeviceStreams } from './device-streams.js';
import { forwardingMetrics, type ForwardingMetrics } from './metrics.js';
import { OwnedConnections, type Owned } from './owned-connections.js';
import { OwnershipKeeper } from './ownership-keeper.js';
import { PodLease } from './pod-lease.js';
import { StreamDelivery } from './stream-delivery.js';
import { streamWindowMetrics } from './stream-window-metrics.js';

/** Why a pod closes streams it served at their gateway: metric label of sse_streams_closed_state_loss_total. */
type StateLoss = 'registry_lost' | 'lease_lost' | 'no_longer_owned';

/** The configuration forwarding reads (names as in @iotsupport/config). */
export interface ForwardingConfig extends GatewayClientConfig, RetentionSettings {
  REDIS_KEY_PREFIX: string;
  LOG_ENTITY_FIELD: string;
  POD_ID: string;
  SSE_GATEWAY_TOPOLOGY: GatewayTopology;
  OWNERSHIP_LEASE_SECONDS: number;
  CONNECTION_PROBE_INTERVAL_SECONDS: number;
}

export interface ForwardingOptions {
  config: ForwardingConfig;
  /** Command connection (no key prefix); a duplicate of it becomes the subscriber. */
  redis: Redis;
  registry: Registry;
  logger: Logger;
  /** How long a subscribe call waits for the owner to listen (default 1000 ms). */
  syncTimeoutMs?: number;
  /** How long stop() lets queued events go out before releasing the connections (default 5000 ms). */
  drainTimeoutMs?: number;
  /** Intervals, for tests. */
  takeoverIntervalMs?: number;
  reconcileIntervalMs?: number;
  orphanIntervalMs?: number;
}

/**
 * Live forwarding on one api pod: owns a share of the SSE connections, listens to the log channels
 * of the entities they watch, and sends their `device-logs` and `rotation-updated` events through
 * the gateway client. docs/forwarding.md explains the whole scheme; the parts:
 * PodLease (fence), OwnershipKeeper (claims, take-overs, reconcile), OwnedConnections (local
 * table, channel ref counts), DeviceLogListener (batches → events), FleetSync (notices between pods).
 * The ConnectionService calls `ownNewConnection`, `syncOwnerListening` and `forgetRemoved` after
 * each registry transition; the Prober (ConnectionUpkeep) probes what `owned` holds.
 */
export class Forwarding {
  readonly gateway: GatewayClient;
  readonly metrics: ForwardingMetrics;
  readonly owned: OwnedConnections;
  readonly store: OwnershipStore;
  readonly lease: PodLease;
  /** Reads of the devices' retained windows (replays, subscribe's resume point). */
  readonly streams: DeviceStreams;
  private readonly delivery: StreamDelivery;
  private readonly connections: ConnectionRegistry;
  private readonly subscriber: Redis;
  private readonly keeper: OwnershipKeeper;
  private readonly listener: DeviceLogListener;
  private readonly sync: FleetSync;
  private readonly channelOps = new Map<string, Promise<unknown>>();
  private readonly prefix: string;
  private podChannelName: string | null = null;
  private draining = false;

  constructor(private readonly opts: ForwardingOptions) {
    const { config, logger } = opts;
    this.prefix = config.REDIS_KEY_PREFIX;
    const leaseMs = config.OWNERSHIP_LEASE_SECONDS * 1000;
    if (config.GATEWAY_SEND_TIMEOUT_MS >= leaseMs) {
      logger.warn({ timeoutMs: config.GATEWAY_SEND_TIMEOUT_MS, leaseMs }, 'GATEWAY_SEND_TIMEOUT_MS >= the ownership lease: sends are cut at the lease');
    }
    this.metrics = forwardingMetrics(opts.registry);
    this.connections = new ConnectionRegistry(opts.redis, this.prefix);
    this.store = new OwnershipStore(opts.redis, this.prefix);
    // Connected in start(): a SUBSCRIBE racing the connection's ready check would break it.
    this.subscriber = opts.redis.duplicate({ connectionName: `iotsupport-forwarding-${config.POD_ID}`, lazyConnect: true });
    this.subscriber.on('error', (err: Error) => logger.warn({ err: err.message }, 'forwarding subscriber connection error'));
    this.owned = new OwnedConnections({
      entityWatched: (eid) => this.listen(logChannelName(this.prefix, eid), true),
      entityUnwatched: (eid) => this.listen(logChannelName(this.prefix, eid), false),
    });
    this.gateway = new GatewayClient({
      ...gatewayClientOptions(config),
      registry: opts.registry,
      fence: (token) => this.fence(token),
      onGone: (token) => void this.gone(token),
    });
    this.streams = new DeviceStreams(opts.redis, this.prefix, streamRetention(config));
    streamWindowMetrics(opts.registry, opts.redis, this.prefix);
    this.delivery = new StreamDelivery({ owned: this.owned, gateway: this.gateway, streams: this.streams, metrics: this.metrics, logger, entityField: config.LOG_ENTITY_FIELD });
    this.lease = new PodLease({
      store: this.store,
      podId: config.POD_ID,
      gateway: config.SSE_GATEWAY_URL,
      leaseMs,
      logger,
      onAcquired: (instance) => this.listenAsInstance(instance),
      onLost: () => {
        this.metrics.leaseLost.inc();
        // Live pods (this one as a new instance too) take over what is still in the registry.
        void this.closeUnregistered(this.dropAll(), 'lease_lost');
      },
      onRegistryLost: () => {
        this.metrics.leaseLost.inc();
        // Nothing in Redis knows these streams any more: the browsers must reconnect (with `since`).
        for (const owned of this.dropAll()) this.closeStream(owned, 'registry_lost');
      },
      checkpoints: () => this.delivery.takeCheckpoints(),
      onCheckpointsWritten: (count) => this.metrics.checkpointWrites.inc(count),
    });
    this.keeper = new OwnershipKeeper({
      store: this.store,
      lease: this.lease,
      owned: this.owned,
      metrics: this.metrics,
      logger,
      podId: config.POD_ID,
      gatewayUrl: config.SSE_GATEWAY_URL,
      topology: config.SSE_GATEWAY_TOPOLOGY,
      leaseMs,
      probeIntervalMs: config.CONNECTION_PROBE_INTERVAL_SECONDS * 1000,
      closeForeign: (conn) => this.closeForeign(conn),
      settle: (conns) => this.listening(conns.flatMap((c) => c.entities)),
      resume: (conns) => this.resumeFromPositions(conns),
      dropped: (rids) => void this.closeUnregistered(this.drop(rids, 'fenced'), 'no_longer_owned'),
      takeoverIntervalMs: opts.takeoverIntervalMs,
      reconcileIntervalMs: opts.reconcileIntervalMs,
      orphanIntervalMs: opts.orphanIntervalMs,
    });
    this.listener = new DeviceLogListener(this.owned, this.delivery, this.gateway, this.metrics, logger);
    this.sync = new FleetSync({ redis: opts.redis, prefix: this.prefix, logger, timeoutMs: opts.syncTimeoutMs ?? 1000 });
  }

  /** Starts listening, takes a lease, and begins claiming and taking over. */
  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    await this.subscriber.connect();
    await this.subscriber.subscribe(fleetChannel(this.prefix), rotationNudgeChannel(this.prefix));
    await this.lease.start();
    this.keeper.start();
  }

  /** Readiness: this pod holds a lease (it can own connections). */
  get ready(): boolean {
    return this.lease.instance !== null && !this.draining;
  }

  /**
   * SIGTERM: stop taking connections, stop listening (no new events), let what is queued go out,
   * then stop sending and end the lease so live pods take this pod's connections over at once.
   * The gateway client stays usable for unfenced closes until close().
   */
  async stop(): Promise<void> {
    if (this.draining) return;
    this.keeper.stopTaking();
    await this.subscriber.unsubscribe().catch(() => undefined);
    await withTimeout(this.gateway.idle(), this.opts.drainTimeoutMs ?? 5000).catch(() => {
      this.opts.logger.warn({ queued: this.gateway.queueDepth }, 'shutdown: queued events not all sent in time');
    });
    // The positions reached so far, so whoever takes the connections repeats as little as possible.
    await this.lease.renew();
    this.draining = true;
    const instance = this.lease.instance;
    this.dropAll();
    await this.lease.release().catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'lease release failed; it will run out'));
    if (instance !== null) await this.sync.released(instance).catch(() => undefined);
  }

  /** Closes the subscriber and the gateway pools (after stop(), when nothing sends any more). */
  async close(): Promise<void> {
    if (!this.draining) await this.stop();
    this.subscriber.disconnect();
    await this.gateway.destroy();
  }

  // ---- what the ConnectionService calls after a registry transition committed -------------------

  /** A connect callback landed on this pod: own the connection; forget a replaced stream's owner state. */
  async ownNewConnection(requestId: string, token: string, replacedToken: string | null): Promise<void> {
    if (replacedToken) this.forgetRemoved(requestId, replacedToken);
    try {
      await this.keeper.claim([{ requestId, token }]);
    } catch (err) {
      // Nothing is lost: another pod's orphan pass adopts it.
      this.opts.logger.warn({ err: (err as Error).message, requestId }, 'claiming a new connection failed');
    }
  }

  /**
   * A subscribe/unsubscribe changed what the connection watches (or a resume moved where an
   * entity's delivery starts, `from`): its owner listens, and starts replaying, before we answer.
   */
  async syncOwnerListening(requestId: string, from?: StartAfter): Promise<void> {
    try {
      const owner = await this.store.ownerOf(requestId);
      if (owner === null) return; // whoever takes it reads its subscriptions and positions then
      if (owner === this.lease.instance) return await this.refresh(requestId, from);
      // A dead owner is not asked first: nobody hears the notice (answered at once) or it never
      // acks (bounded by the timeout); whoever takes its connections over reads them then.
      await this.sync.requestSync(owner, requestId, this.lease.instance, from);
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message, requestId }, 'subscription sync failed; the owner reconciles');
    }
  }

  /** The registry removed (requestId, token): its owner stops sending to it now. */
  forgetRemoved(requestId: string, token: string): void {
    if (this.owned.get(requestId)?.token === token) this.drop([requestId], 'discarded');
    else void this.sync.forget(requestId, token).catch(() => undefined);
  }

  // ---- internals ---------------------------------------------------------------------------------

  private dispatch(channel: string, message: string): void {
    const entityId = entityIdFromLogChannel(this.prefix, channel);
    if (entityId !== undefined) return this.listener.onLogMessage(entityId, message);
    if (channel === rotationNudgeChannel(this.prefix)) return this.listener.onNudge(message);
    const notice = parseNotice(message);
    if (notice) void this.onNotice(notice);
  }

  private async onNotice(notice: FleetNotice): Promise<void> {
    try {
      if (notice.t === 'ack') this.sync.acknowledged(notice.id);
      else if (notice.t === 'forget') this.afterForget(notice.rid, notice.token);
      else if (notice.t === 'released') this.keeper.takeOverSoon();
      else if (notice.t === 'sync') {
        await this.refresh(notice.rid, notice.from);
        if (notice.reply) await this.sync.ack(notice.reply, notice.id);
      }
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message, notice: notice.t }, 'fleet notice failed');
    }
  }

  private afterForget(requestId: string, token: string): void {
    if (this.owned.get(requestId)?.token === token) this.drop([requestId], 'discarded');
  }

  /**
   * Re-reads what an owned connection watches and listens to it; an entity it newly watches starts
   * after its recorded position (the subscribe's start), and `from` (a resume) moves one entity's.
   */
  private async refresh(requestId: string, from?: StartAfter): Promise<void> {
    const owned = this.owned.get(requestId);
    if (!owned) return;
    const [entities, positions] = await Promise.all([this.connections.subscriptionsOf(requestId), this.connections.positionsOf(requestId)]);
    if (this.owned.get(requestId) !== owned) return;
    // A resume of an entity already being delivered moves it; a new one starts from its recorded start.
    const resumed = from !== undefined && owned.tracks.has(from.entityId);
    this.owned.setEntities(owned, Object.values(entities));
    this.startFromPositions(owned, positions, 'subscribe');
    if (resumed) void this.delivery.startAfter(owned, from.entityId, from.cursor, 'subscribe');
    await this.listening([...owned.entities]);
  }

  /** Newly owned connections: every entity with a recorded position replays from it (resolves when all did). */
  private async resumeFromPositions(conns: OwnedConnection[]): Promise<void> {
    const replays: Promise<void>[] = [];
    for (const conn of conns) {
      const owned = this.owned.get(conn.requestId);
      if (owned?.token === conn.token) replays.push(...this.startFromPositions(owned, conn.positions, 'takeover'));
    }
    await Promise.all(replays);
  }

  /** Entities of the connection without a track yet start after their recorded position. */
  private startFromPositions(owned: Owned, positions: Record<string, string>, reason: 'takeover' | 'subscribe'): Promise<void>[] {
    const replays: Promise<void>[] = [];
    for (const [entityId, cursor] of Object.entries(positions)) {
      if (!owned.tracks.has(entityId)) replays.push(this.delivery.startAfter(owned, entityId, cursor, reason));
    }
    return replays;
  }

  /** How long this pod may still send to the connection (null: not at all, see PodLease and adopt()). */
  private fence(token: string): number | null {
    const owned = this.owned.byToken(token);
    if (this.draining || !owned || performance.now() < owned.sendableAt) return null;
    return this.lease.remainingMs();
  }

  /** Stops sending to every owned connection (lease lost, shutdown): what is queued is fenced. Returns them. */
  private dropAll(): Owned[] {
    const dropped = this.owned.clear();
    for (const owned of dropped) this.gateway.discard(owned.token, 'fenced');
    this.delivery.clearCheckpoints();
    this.metrics.ownedConnections.set(this.owned.size);
    return dropped;
  }

  private drop(requestIds: string[], reason: 'discarded' | 'fenced'): Owned[] {
    const dropped: Owned[] = [];
    for (const rid of requestIds) {
      const owned = this.owned.remove(rid);
      if (owned) {
        this.gateway.discard(owned.token, reason);
        dropped.push(owned);
      }
    }
    this.metrics.ownedConnections.set(this.owned.size);
    return dropped;
  }

  /**
   * Connections this pod stopped serving without the registry having removed them: each one the
   * registry no longer holds (with that token) is closed at its gateway — whoever still has it in
   * the registry serves it (a live pod takes it over), the others would stay open and unserved.
   * When Redis cannot say, the stream is closed (the browser reconnects and resumes with `since`).
   */
  private async closeUnregistered(dropped: Owned[], reason: StateLoss): Promise<void> {
    if (dropped.length === 0) return;
    let current: Array<string | null> = dropped.map(() => null);
    try {
      const pipeline = this.opts.redis.pipeline();
      for (const owned of dropped) pipeline.hget(this.connections.keys.connection(owned.requestId), 'token');
      current = ((await pipeline.exec()) ?? []).map(([err, token]) => (err ? null : (token as string | null)));
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message, count: dropped.length }, 'could not check dropped connections in the registry: closing them');
    }
    dropped.forEach((owned, i) => {
      if (current[i] !== owned.token) this.closeStream(owned, reason);
    });
  }

  /** Closes a stream at its gateway (unfenced: on behalf of the registry), not awaited. */
  private closeStream(owned: Owned, reason: StateLoss): void {
    this.metrics.closedForStateLoss.inc({ reason });
    this.gateway.close(owned.token, { gatewayUrl: owned.gateway, fenced: false, service: 'close' }).then(
      (outcome) => {
        if (outcome.status !== 'ok' && outcome.status !== 'not_found') this.opts.logger.warn({ status: outcome.status, reason }, 'closing an unserved stream at the gateway failed');
      },
      (err: Error) => this.opts.logger.warn({ err: err.message, reason }, 'closing an unserved stream at the gateway failed'),
    );
  }

  /** A 404 from the gateway: the stream is gone; clean up like a disconnect. */
  private async gone(token: string): Promise<void> {
    try {
      const owned = this.owned.byToken(token);
      const requestId = owned?.requestId ?? (await this.connections.requestIdForToken(token));
      if (owned) this.drop([owned.requestId], 'discarded');
      if (requestId) await this.connections.gatewayGone(requestId, token);
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'cleaning up a gone connection failed; the liveness sweep will');
    }
  }

  /** Per-pod topology: a dead pod's stream at its own gateway is closed so the browser reconnects. */
  private async closeForeign(conn: OwnedConnection): Promise<void> {
    await this.gateway.close(conn.token, { gatewayUrl: conn.gateway, service: 'close' });
    await this.connections.gatewayGone(conn.requestId, conn.token);
  }

  private listen(channel: string, on: boolean): void {
    const op = (on ? this.subscriber.subscribe(channel) : this.subscriber.unsubscribe(channel)).catch((err: Error) =>
      this.opts.logger.warn({ err: err.message, channel, on }, 'log channel (un)subscribe failed'),
    );
    this.channelOps.set(channel, op);
    void op.then(() => {
      if (this.channelOps.get(channel) === op && !on) this.channelOps.delete(channel);
    });
    this.metrics.subscribedEntities.set(this.owned.watchedCount);
  }

  /** Resolves once this pod's SUBSCRIBE of every given entity's channel has been confirmed. */
  private async listening(entities: string[]): Promise<void> {
    await Promise.all(entities.map((eid) => this.channelOps.get(logChannelName(this.prefix, eid))));
  }

  private async listenAsInstance(instance: string): Promise<void> {
    if (this.podChannelName) await this.subscriber.unsubscribe(this.podChannelName).catch(() => undefined);
    this.podChannelName = podChannel(this.prefix, instance);
    await this.subscriber.subscribe(this.podChannelName);
  }
}
