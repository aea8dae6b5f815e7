import type { GatewayClient } from '@iotsupport/gateway-client';
import type { Logger } from '@iotsupport/observability';

/** A probe's answer: 2xx alive, 404 gone, anything else (5xx, timeout, refused) unreachable. */
export type GatewayProbeAnswer = 'alive' | 'gone' | 'unreachable';

/** What the connection service and the registry sweep need from the gateway: closes and probes on behalf of the registry. */
export interface GatewayControl {
  /** `/internal/send` with `close: true`. 'gone' = 404 (already closed). */
  close(token: string, gatewayUrl: string): Promise<'closed' | 'gone' | 'failed'>;
  /** An empty `/internal/send`. */
  probe(token: string, gatewayUrl: string): Promise<GatewayProbeAnswer>;
}

/** A GatewayControl over the gateway client: closes and probes are never fenced (they act for the registry). */
export function gatewayControlOver(client: GatewayClient): GatewayControl {
  return {
    async close(token, gatewayUrl) {
      const outcome = await client.close(token, { gatewayUrl, fenced: false, service: 'close' });
      return outcome.status === 'ok' ? 'closed' : outcome.status === 'not_found' ? 'gone' : 'failed';
    },
    async probe(token, gatewayUrl) {
      const outcome = await client.probe(token, { gatewayUrl, fenced: false, service: 'probe' });
      return outcome.status === 'ok' ? 'alive' : outcome.status === 'not_found' ? 'gone' : 'unreachable';
    },
  };
}

/**
 * Closes a stream at its gateway without waiting: the gateway answers a close only after our answer
 * to its disconnect callback, and the caller's own answer must not wait on that round trip.
 * A failure is logged; the stream's state is already gone from the registry.
 */
export function closeInBackground(gateway: GatewayControl, token: string, gatewayUrl: string, log: Logger): void {
  gateway.close(token, gatewayUrl).then(
    (outcome) => {
      if (outcome === 'failed') log.warn({ gateway: gatewayUrl }, 'closing a stream at the gateway failed');
    },
    (err: Error) => log.warn({ err: err.message, gateway: gatewayUrl }, 'closing a stream at the gateway failed'),
  );
}
