import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The client's metrics. Names with `sse_gateway_events_sent_total` and
 * `sse_gateway_send_duration_seconds` are the contract's; the rest is what an operator needs to
 * see a slow browser or a struggling gateway. Registered once per registry, so several clients
 * (one per gateway in the per-pod topology) share them.
 */
export interface GatewayMetrics {
  /** One per finished event: status ok | not_found | rejected | failed. */
  sent: Counter<'service' | 'status'>;
  /** One per HTTP attempt, including retries. */
  duration: Histogram<'service'>;
  retries: Counter<'service'>;
  /** Events that never reached the gateway: reason queue_full | retries_exhausted | rejected | gone | fenced | discarded. */
  dropped: Counter<'service' | 'reason'>;
  queueDepth: Gauge;
  inFlight: Gauge;
}

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function gatewayMetrics(registry: Registry): GatewayMetrics {
  const registers = [registry];
  return {
    sent: getOrCreate(registry, 'sse_gateway_events_sent_total', () =>
      new Counter({ name: 'sse_gateway_events_sent_total', help: 'Events finished at the SSE Gateway, by outcome', labelNames: ['service', 'status'], registers }),
    ),
    duration: getOrCreate(registry, 'sse_gateway_send_duration_seconds', () =>
      new Histogram({
        name: 'sse_gateway_send_duration_seconds',
        help: 'Duration of one POST /internal/send attempt',
        labelNames: ['service'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      }),
    ),
    retries: getOrCreate(registry, 'sse_gateway_send_retries_total', () =>
      new Counter({ name: 'sse_gateway_send_retries_total', help: 'Send attempts repeated after a 5xx, timeout or network error', labelNames: ['service'], registers }),
    ),
    dropped: getOrCreate(registry, 'sse_gateway_events_dropped_total', () =>
      new Counter({ name: 'sse_gateway_events_dropped_total', help: 'Events given up before the gateway accepted them, by reason', labelNames: ['service', 'reason'], registers }),
    ),
    queueDepth: getOrCreate(registry, 'sse_gateway_send_queue_depth', () =>
      new Gauge({ name: 'sse_gateway_send_queue_depth', help: 'Events queued for the gateway on this pod, in flight included', registers }),
    ),
    inFlight: getOrCreate(registry, 'sse_gateway_sends_in_flight', () =>
      new Gauge({ name: 'sse_gateway_sends_in_flight', help: 'POST /internal/send requests currently open from this pod', registers }),
    ),
  };
}
