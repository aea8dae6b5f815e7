import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Forwarding's metrics. `sse_device_log_events_sent_total` and `sse_rotation_nudge_broadcast_total`
 * are the contract's; the rest says what an operator asks during an incident: how much does this
 * pod own, how late are logs, did a take-over happen and how long was the gap.
 */
export interface ForwardingMetrics {
  /** One per device-logs event per connection: ok | dropped | failed | not_found | rejected | fenced | discarded. */
  deviceLogEvents: Counter<'status'>;
  /** Nudges this pod broadcast to the connections it owns (every pod counts each nudge once). */
  nudges: Counter<'source'>;
  /** Batches from the log channels: forwarded | duplicate | invalid | no_watchers. */
  batches: Counter<'result'>;
  /** From ingest receiving the MQTT message to the gateway's 200 for the event. */
  ingestToAck: Histogram;
  ownedConnections: Gauge;
  subscribedEntities: Gauge;
  /** Connections moved to this pod from a dead or drained one; action adopt | close. */
  takeovers: Counter<'action'>;
  /** Time between a dead owner's last lease renewal and this pod taking its connections. */
  takeoverGap: Histogram;
  leaseLost: Counter;
  /** Docs cut down to fit one event (a single line above the 100 kB body limit). */
  truncatedDocs: Counter;
  probes: Counter<'result'>;
  // ---- recoverable streams (docs/streams-api.md) ----
  /** Lines read from a device's window and sent: takeover | subscribe | gap. */
  replayedLines: Counter<'reason'>;
  /** From adopting a dead pod's connections to having replayed each from its checkpoint. */
  takeoverReplay: Histogram;
  /** Subscribes with `since`: recovered | not_recovered. */
  resumes: Counter<'outcome'>;
  /** Streams this pod closed at the gateway because their state was lost: registry_lost | lease_lost | no_longer_owned. */
  closedForStateLoss: Counter<'reason'>;
  /** Positions written with the lease renewal. */
  checkpointWrites: Counter;
  /** Lines not sent again because the connection's position was already past them. */
  skippedLines: Counter;
  /** Lines a connection should have had but the window no longer held (its offsets jump). */
  unrecoverableLines: Counter;
}

export function forwardingMetrics(registry: Registry): ForwardingMetrics {
  const registers = [registry];
  return {
    deviceLogEvents: new Counter({ name: 'sse_device_log_events_sent_total', help: 'device-logs events per connection, by outcome at the gateway', labelNames: ['status'], registers }),
    nudges: new Counter({ name: 'sse_rotation_nudge_broadcast_total', help: 'rotation-updated nudges broadcast to the connections this pod owns', labelNames: ['source'], registers }),
    batches: new Counter({ name: 'sse_forwarding_batches_total', help: 'Log batches received from the ingest channels, by what happened to them', labelNames: ['result'], registers }),
    ingestToAck: new Histogram({
      name: 'sse_device_log_ingest_to_ack_seconds',
      help: 'From ingest receiving the MQTT message to the gateway accepting the device-logs event',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    ownedConnections: new Gauge({ name: 'sse_forwarding_owned_connections', help: 'SSE connections this pod sends to', registers }),
    subscribedEntities: new Gauge({ name: 'sse_forwarding_subscribed_entities', help: 'Entity log channels this pod listens to (entities its connections watch)', registers }),
    takeovers: new Counter({ name: 'sse_ownership_takeovers_total', help: 'Connections taken over from a dead or drained pod', labelNames: ['action'], registers }),
    takeoverGap: new Histogram({
      name: 'sse_ownership_takeover_gap_seconds',
      help: "From a dead owner's last lease renewal to the take-over of its connections (delivery gap)",
      buckets: [0.5, 1, 2, 3, 4, 5, 7.5, 10, 20],
      registers,
    }),
    leaseLost: new Counter({ name: 'sse_ownership_lease_lost_total', help: 'Times this process lost its ownership lease and dropped what it owned', registers }),
    truncatedDocs: new Counter({ name: 'sse_device_log_docs_truncated_total', help: 'Log docs shortened to fit one /internal/send body', registers }),
    probes: new Counter({ name: 'sse_connection_probes_total', help: 'Probes of owned connections at the gateway: alive | gone | failed', labelNames: ['result'], registers }),
    replayedLines: new Counter({ name: 'sse_stream_replayed_lines_total', help: "Lines replayed from a device's retained window, by why: takeover | subscribe | gap | resend", labelNames: ['reason'], registers }),
    takeoverReplay: new Histogram({
      name: 'sse_stream_takeover_replay_seconds',
      help: "From adopting a dead or drained pod's connections to having replayed each from its checkpoint",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    resumes: new Counter({ name: 'sse_stream_resumes_total', help: 'Subscribes with since, by outcome: recovered | not_recovered', labelNames: ['outcome'], registers }),
    closedForStateLoss: new Counter({
      name: 'sse_streams_closed_state_loss_total',
      help: 'Streams closed at the gateway because their state was lost: registry_lost | lease_lost | no_longer_owned',
      labelNames: ['reason'],
      registers,
    }),
    checkpointWrites: new Counter({ name: 'sse_stream_checkpoint_writes_total', help: 'Delivery positions written with the lease renewal', registers }),
    skippedLines: new Counter({ name: 'sse_stream_lines_skipped_total', help: "Lines not sent again: at or before the connection's position", registers }),
    unrecoverableLines: new Counter({ name: 'sse_stream_lines_unrecoverable_total', help: 'Lines a connection missed because the window no longer held them', registers }),
  };
}
