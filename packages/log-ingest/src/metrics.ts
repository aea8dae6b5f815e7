import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LINE_STATUSES } from './log-line.js';

/**
 * Everything ingest exports. The `iot_logsink_*` names of the contract are kept verbatim
 * (dashboards of the original read them); the rest is what an operator needs to see the
 * no-loss machinery: unacknowledged messages, dead-lettered lines, redeliveries.
 */
export function createIngestMetrics(registry: Registry) {
  const registers = [registry];
  const m = {
    messagesReceived: new Counter({
      name: 'iot_logsink_messages_received_total',
      help: 'MQTT messages received, by outcome: ok | partial (some lines skipped) | invalid (no usable line) | empty | overflow (QoS 0 beyond the in-flight window, dropped)',
      labelNames: ['status'] as const,
      registers,
    }),
    linesReceived: new Counter({
      name: 'iot_logsink_lines_received_total',
      help: 'Non-empty NDJSON lines, by outcome: ok | message_not_string (stored, message as JSON text) | invalid_utf8 | invalid_json | not_object | too_deep (skipped)',
      labelNames: ['status'] as const,
      registers,
    }),
    redeliveries: new Counter({
      name: 'iot_logsink_redeliveries_total',
      help: 'MQTT messages the broker sent again (DUP flag): earlier copy not acknowledged in time or ingest restarted',
      registers,
    }),
    shed: new Counter({
      name: 'iot_logsink_messages_shed_total',
      help: 'QoS 1 deliveries beyond INGEST_MAX_INFLIGHT while the pipeline was stuck: left unacknowledged and fetched again by a reconnect once it drained',
      registers,
    }),
    esWrites: new Counter({
      name: 'iot_logsink_es_writes_total',
      help: 'Elasticsearch _bulk requests: status success | partial (some items failed) | failed (request failed); error_type none | connection | timeout | http_429 | http_5xx | http_4xx | item_retryable | item_rejected | other',
      labelNames: ['status', 'error_type'] as const,
      registers,
    }),
    esWriteDuration: new Histogram({
      name: 'iot_logsink_es_write_duration_seconds',
      help: 'Duration of one Elasticsearch _bulk request',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    retryDelay: new Histogram({
      name: 'iot_logsink_retry_delay_seconds',
      help: 'Backoff waited before retrying a write, by target (elasticsearch | redis)',
      labelNames: ['target'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    batchSize: new Histogram({
      name: 'iot_logsink_batch_size',
      help: 'Lines per ingest batch (one _bulk request on the first attempt)',
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'iot_logsink_queue_depth',
      help: 'Lines received and not yet accepted by Elasticsearch or the dead letter',
      registers,
    }),
    unackedMessages: new Gauge({
      name: 'iot_logsink_unacked_messages',
      help: 'MQTT messages received and not yet acknowledged (bounded by INGEST_MAX_INFLIGHT per connection)',
      registers,
    }),
    deadLettered: new Counter({
      name: 'iot_logsink_dead_lettered_lines_total',
      help: 'Lines Elasticsearch refused permanently, written to ELASTICSEARCH_DEAD_LETTER_INDEX, by Elasticsearch error type',
      labelNames: ['reason'] as const,
      registers,
    }),
    deadLetterFailures: new Counter({
      name: 'iot_logsink_dead_letter_failures_total',
      help: 'Lines the dead-letter index refused too (logged at error level with the document, then given up)',
      registers,
    }),
    fanoutPublished: new Counter({
      name: 'iot_logsink_fanout_messages_total',
      help: 'Redis channel messages appended to their device stream and published to the api fleet',
      registers,
    }),
    streamDuplicateBatches: new Counter({
      name: 'iot_logsink_stream_duplicate_batches_total',
      help: 'Batches a device stream already held (re-published after a crash or a partial Redis failure): neither appended nor published again',
      registers,
    }),
    ackLatency: new Histogram({
      name: 'iot_logsink_receive_to_ack_seconds',
      help: 'From MQTT receipt to acknowledgement (stored and fanned out)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
  for (const status of ['ok', 'partial', 'invalid', 'empty', 'overflow']) m.messagesReceived.inc({ status }, 0);
  for (const status of LINE_STATUSES) m.linesReceived.inc({ status }, 0);
  return m;
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
