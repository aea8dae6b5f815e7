import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { closeMqtt, logConnectionErrors, type Logger } from '@iotsupport/observability';
import type { IncomingMessage } from './pipeline.js';
import type { IngestMetrics } from './metrics.js';

export interface MqttSourceOptions {
  url: string;
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Full topic (MQTT_TOPIC_PREFIX applied). */
  topic: string;
  /** INGEST_MAX_INFLIGHT: MQTT 5 receive maximum, and the most messages held unacknowledged. */
  maxInflight: number;
  sessionExpirySeconds: number;
  /** MQTT keepalive; 30 s unless a test wants to see it survive a long store outage quickly. */
  keepaliveSeconds?: number;
  logger: Logger;
  metrics: IngestMetrics;
}

/** How the source sees the pipeline: distinct messages held, not yet acknowledged. */
export interface PipelineLoad {
  readonly pendingMessages: number;
}

/**
 * Handed back to MQTT.js from `handleMessage` to skip its automatic PUBACK: its QoS 1 path sends
 * the PUBACK in the callback unless the callback gets an error, and then just moves on to the
 * next packet. We send the PUBACK ourselves once the message is stored (see `sendPuback`).
 */
const DEFER_PUBACK = new Error('PUBACK deferred until the message is stored');

interface Held {
  packet: IPublishPacket;
  callback: (err?: Error) => void;
  connection: number;
}

/**
 * The `iotsupport/logsink` subscription with acknowledgement after storage, and a hard bound on
 * what ingest holds.
 *
 * Deferred PUBACK: MQTT.js has no public API for it. Delaying `handleMessage`'s callback delays
 * the PUBACK but also stalls MQTT.js's packet loop — one message at a time, and no PINGRESP read,
 * so a long outage ends in "Keepalive timeout" (MQTT.js issue #1935). So the callback returns at
 * once and the PUBACK is written later through the client's own packet writer.
 *
 * Flow control: we ask for receive maximum = INGEST_MAX_INFLIGHT, but Mosquitto 2.0.11 honours it
 * only until the first PUBACK and then sends its whole queue (tested in mqtt-source.test.ts). So
 * ingest enforces the window itself. A delivery that finds the window full is held — the packet
 * loop pauses and TCP pushes back on the broker — until the pipeline makes room. If no room comes
 * within half a keepalive (the store is down), the held delivery and every later one are shed:
 * left unacknowledged and not kept, so the packet loop and keepalives go on with bounded memory.
 * Once the pipeline has drained, ingest reconnects and the broker redelivers what was shed.
 *
 * Persistent session: `clean: false`, a stable client id and an MQTT 5 session expiry, so the
 * broker queues what arrives while ingest is down and redelivers whatever was not acknowledged.
 */
export class MqttLogSource {
  private readonly client: MqttClient;
  /** Bumped on every (re)connect and close: a PUBACK is only valid on the connection its message came on. */
  private connection = 0;
  private connects = 0;
  private taking = true;
  private held: Held | undefined;
  private heldTimer: NodeJS.Timeout | undefined;
  /** Drain-and-reconnect mode: every QoS 1 delivery is shed until the pipeline is empty. */
  private shedding = false;
  private shedCount = 0;
  private readonly stallLimitMs: number;

  constructor(
    private readonly opts: MqttSourceOptions,
    private readonly deliver: (message: IncomingMessage) => void,
    private readonly load: PipelineLoad,
  ) {
    const keepalive = opts.keepaliveSeconds ?? 30;
    this.stallLimitMs = (keepalive * 1000) / 2;
    this.client = mqtt.connect(opts.url, {
      clientId: opts.clientId,
      username: opts.username,
      password: opts.password,
      protocolVersion: 5,
      clean: false,
      resubscribe: false,
      reconnectPeriod: 1000,
      keepalive,
      properties: { receiveMaximum: opts.maxInflight, sessionExpiryInterval: opts.sessionExpirySeconds },
    });
    this.client.handleMessage = (packet, callback) => this.onPublish(packet, callback);
    this.client.on('connect', (connack) => {
      this.connection++;
      this.connects++;
      opts.logger.info({ sessionPresent: connack.sessionPresent, topic: opts.topic }, 'mqtt connected');
      // rh 1: retained messages only when the subscription is new, not on every reconnect.
      this.client.subscribe(opts.topic, { qos: 1, rh: 1 }, (err) => {
        if (err) opts.logger.error({ err, topic: opts.topic }, 'mqtt subscribe failed');
      });
    });
    this.client.on('close', () => {
      this.connection++;
      // That connection's packet loop is gone: its held delivery comes again on the next one.
      this.releaseHeld('drop');
      this.shedding = false;
      this.shedCount = 0;
    });
    logConnectionErrors(this.client, opts.logger, 'mqtt');
    this.client.on('offline', () => opts.logger.warn('mqtt offline; reconnecting'));
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Successful connects so far (more than 1: the connection dropped or was renewed). */
  get connectCount(): number {
    return this.connects;
  }

  /** The pipeline acknowledged messages: resume a held delivery, or fetch shed ones once it is empty. */
  onPipelineProgress(): void {
    if (this.held && this.load.pendingMessages < this.opts.maxInflight) this.releaseHeld('deliver');
    if (this.shedding && this.load.pendingMessages === 0) this.reconnectForRedelivery();
  }

  /**
   * Stop taking messages (SIGTERM): later deliveries are neither processed nor acknowledged, so
   * the broker keeps them for the next session. The subscription stays: unsubscribing would make
   * the broker stop queueing for the persistent session while ingest is down.
   */
  stopTaking(): void {
    this.taking = false;
    this.releaseHeld('drop');
  }

  /**
   * Disconnects cleanly; the session (and what is unacknowledged in it) stays with the broker.
   * Bounded (observability's closeMqtt): a broker that stopped answering gets the connection cut.
   */
  async close(): Promise<void> {
    this.stopTaking();
    await closeMqtt(this.client);
  }

  private onPublish(packet: IPublishPacket, callback: (err?: Error) => void): void {
    const { metrics } = this.opts;
    const qos1 = packet.qos > 0;
    if (!this.taking) return callback(qos1 ? DEFER_PUBACK : undefined);
    if (packet.dup) metrics.redeliveries.inc();
    const full = this.load.pendingMessages >= this.opts.maxInflight;
    if (!qos1) {
      // QoS 0 has no redelivery and no broker flow control: beyond the window it is dropped, counted.
      if (full) metrics.messagesReceived.inc({ status: 'overflow' });
      else this.handOver(packet, this.connection);
      return callback();
    }
    if (this.shedding) return this.shed(callback);
    if (full) {
      this.held = { packet, callback, connection: this.connection };
      this.heldTimer = setTimeout(() => this.releaseHeld('shed'), this.stallLimitMs);
      return;
    }
    this.handOver(packet, this.connection);
    callback(DEFER_PUBACK);
  }

  private handOver(packet: IPublishPacket, connection: number): void {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const { messageId, qos } = packet;
    this.deliver({
      payload,
      receivedAtMs: Date.now(),
      ack: () => {
        if (qos > 0 && messageId !== undefined) this.sendPuback(messageId, connection);
      },
    });
  }

  private releaseHeld(how: 'deliver' | 'shed' | 'drop'): void {
    const held = this.held;
    if (!held) return;
    clearTimeout(this.heldTimer);
    this.held = undefined;
    if (how === 'deliver') {
      this.handOver(held.packet, held.connection);
      held.callback(DEFER_PUBACK);
    } else if (how === 'shed') {
      this.shedding = true;
      this.opts.logger.warn({ pending: this.load.pendingMessages }, 'in-flight window full and not draining: shedding deliveries until it has');
      this.shed(held.callback);
    } else {
      held.callback(DEFER_PUBACK);
    }
  }

  private shed(callback: (err?: Error) => void): void {
    this.shedCount++;
    this.opts.metrics.shed.inc();
    callback(DEFER_PUBACK);
  }

  /** Shed deliveries stay unacknowledged at the broker; it sends them again on a new connection. */
  private reconnectForRedelivery(): void {
    if (!this.taking) return;
    this.opts.logger.info({ shed: this.shedCount }, 'pipeline drained: reconnecting so the broker redelivers the shed messages');
    this.shedding = false;
    this.shedCount = 0;
    this.client.end(false, {}, () => {
      if (this.taking) this.client.reconnect();
    });
  }

  private sendPuback(messageId: number, connection: number): void {
    // After a reconnect the broker resends the message (same session); acking the old copy on the
    // new connection is not needed, and skipping it keeps packet ids of two connections apart.
    if (connection !== this.connection || !this.client.connected) return;
    const writer = this.client as unknown as { _sendPacket(packet: { cmd: 'puback'; messageId: number; reasonCode: number }, cb?: (err?: Error) => void): void };
    writer._sendPacket({ cmd: 'puback', messageId, reasonCode: 0 }, (err) => {
      if (err) this.opts.logger.warn({ err, messageId }, 'puback not written; the broker will redeliver');
    });
  }
}
