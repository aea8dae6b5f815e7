import { performance } from 'node:perf_hooks';
import { STREAM_ALIVE_EVENT, streamAliveData } from '@iotsupport/contracts';
import { prepareEvent, type GatewayClient, type PreparedEvent } from '@iotsupport/gateway-client';
import type { Logger } from '@iotsupport/observability';
import type { ConnectionRegistry } from '@iotsupport/realtime-state';
import type { ForwardingMetrics } from './metrics.js';
import type { OwnedConnections } from './owned-connections.js';

/**
 * Each owner probes its connections every CONNECTION_PROBE_INTERVAL_SECONDS with a `stream-alive`
 * event (the browser's sign that the stream is served, docs/streams-api.md): a 200 confirms the
 * stream (the registry's last-seen moves on), a 404 ends it like a disconnect (the gateway crashed
 * or lost it without a callback). Probes are spread over the interval, checked once a second.
 */
export class Prober {
  private timer: NodeJS.Timeout | undefined;
  private readonly alive: PreparedEvent;

  constructor(
    private readonly owned: OwnedConnections,
    private readonly gateway: GatewayClient,
    private readonly registry: ConnectionRegistry,
    private readonly metrics: ForwardingMetrics,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    /** The `next_within_s` the event promises (contracts' streamAliveWithinSeconds). */
    aliveWithinSeconds: number,
  ) {
    this.alive = prepareEvent({ name: STREAM_ALIVE_EVENT, data: streamAliveData(aliveWithinSeconds) });
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.min(1000, this.intervalMs));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  tick(): void {
    const now = performance.now();
    for (const conn of this.owned.all()) {
      if (now - conn.probedAt < this.intervalMs) continue;
      conn.probedAt = now;
      const { requestId, token } = conn;
      void this.gateway.probe(token, { gatewayUrl: conn.gateway, fenced: true, event: this.alive }).then(async (outcome) => {
        if (outcome.status === 'ok') {
          this.metrics.probes.inc({ result: 'alive' });
          await this.registry.markSeen(requestId, token).catch((err: Error) => this.logger.warn({ err: err.message }, 'mark-seen failed'));
        } else if (outcome.status === 'not_found') {
          this.metrics.probes.inc({ result: 'gone' }); // the client's onGone cleans up
        } else if (outcome.status === 'failed' || outcome.status === 'rejected') {
          this.metrics.probes.inc({ result: 'failed' });
        }
      });
    }
  }
}
