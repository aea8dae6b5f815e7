import { LRUCache } from 'lru-cache';
import { decodeLogChannelMessage, decodeRotationNudge } from '@iotsupport/contracts';
import { prepareEvent, type GatewayClient } from '@iotsupport/gateway-client';
import type { Logger } from '@iotsupport/observability';
import type { ForwardingMetrics } from './metrics.js';
import type { OwnedConnections } from './owned-connections.js';
import { LiveBatch, type StreamDelivery } from './stream-delivery.js';

const ROTATION_UPDATED = prepareEvent({ name: 'rotation-updated', data: '{}' });

/**
 * How long a batch id is remembered per entity. Ingest republishes a batch only after a crash and
 * restart (the broker redelivers the MQTT message), which takes seconds; a quarter of an hour is
 * ample, and the count cap bounds memory under any rate.
 */
const DEDUP_TTL_MS = 15 * 60 * 1000;
const DEDUP_MAX = 200_000;

/**
 * Listens on this pod's subscriber connection and turns what arrives on its channels into gateway sends for the connections it owns:
 * - an ingest batch of an entity → its `device-logs` events (split under 100 kB, built once), handed
 *   to StreamDelivery for each owned connection watching the entity, in arrival order (= ingest
 *   order: one subscriber connection); delivery sends each connection the lines after its position;
 * - a rotation nudge → one `rotation-updated` `{}` to each owned connection.
 * A batch id already seen on the channel (ingest republished after a crash) is dropped.
 */
export class DeviceLogListener {
  private readonly seen = new LRUCache<string, true>({ max: DEDUP_MAX, ttl: DEDUP_TTL_MS, ttlAutopurge: false });

  constructor(
    private readonly owned: OwnedConnections,
    private readonly delivery: StreamDelivery,
    private readonly gateway: GatewayClient,
    private readonly metrics: ForwardingMetrics,
    private readonly logger: Logger,
  ) {}

  onLogMessage(entityId: string, raw: string): void {
    const message = decodeLogChannelMessage(raw);
    if (!message || message.device_entity_id !== entityId) {
      this.metrics.batches.inc({ result: 'invalid' });
      this.logger.warn({ entityId }, 'log channel message ignored: not a valid batch for this channel');
      return;
    }
    const key = `${entityId}\u0000${message.batch_id}`;
    if (this.seen.has(key)) {
      this.metrics.batches.inc({ result: 'duplicate' });
      return;
    }
    this.seen.set(key, true);
    const watchers = this.owned.watchersOf(entityId);
    if (!watchers || watchers.size === 0) {
      this.metrics.batches.inc({ result: 'no_watchers' });
      return;
    }
    this.metrics.batches.inc({ result: 'forwarded' });
    // Checked and serialised once per batch: each watcher's body only pastes them in.
    const batch = new LiveBatch(message, (lines) => this.delivery.events(entityId, lines));
    for (const conn of [...watchers]) this.delivery.live(conn, batch);
  }

  onNudge(raw: string): void {
    const nudge = decodeRotationNudge(raw);
    if (!nudge) {
      this.logger.warn('rotation nudge ignored: invalid message');
      return;
    }
    this.metrics.nudges.inc({ source: nudge.source });
    for (const conn of this.owned.all()) void this.gateway.send(conn.token, ROTATION_UPDATED, { service: ROTATION_UPDATED.name, gatewayUrl: conn.gateway, fenced: true });
  }
}
