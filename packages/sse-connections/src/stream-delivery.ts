import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatCursor, parseCursor, type LogChannelMessage, type StreamPosition } from '@iotsupport/contracts';
import { prepareEvent, type GatewayClient, type PreparedEvent } from '@iotsupport/gateway-client';
import type { StreamLine } from '@iotsupport/log-stream';
import type { Logger } from '@iotsupport/observability';
import type { Checkpoint } from '@iotsupport/realtime-state';
import type { DeviceStreams } from './device-streams.js';
import { DEVICE_LOGS_EVENT, deviceLogEventData, type DeviceLogEventData, type EventLine } from './log-events.js';
import type { ForwardingMetrics } from './metrics.js';
import type { Owned, OwnedConnections } from './owned-connections.js';
import { newTrack, type StreamTrack } from './stream-track.js';

/** Lines read from the window per round trip while replaying. */
const REPLAY_PAGE = 500;

/** After a rewind, how long until the window is read again if no batch of the device came first. */
const RESEND_AFTER_MS = 1000;

/** Why lines are read from the window: metric label of sse_stream_replayed_lines_total. */
export type ReplayReason = 'takeover' | 'subscribe' | 'gap' | 'resend';

/** A batch's events, built once and shared by every connection that needs all of it. */
export class LiveBatch {
  private shared: PreparedDeviceLogEvent[] | undefined;
  readonly lines: EventLine[];

  constructor(
    readonly message: LogChannelMessage,
    private readonly build: (lines: readonly EventLine[]) => PreparedDeviceLogEvent[],
  ) {
    const { epoch, stream_ms: ms, first_offset: first, ids } = message;
    const positioned = epoch !== undefined && ms !== undefined && first !== undefined;
    this.lines = message.docs.map((doc, i) => ({
      json: JSON.stringify(doc),
      doc,
      ...(ids?.[i] !== undefined ? { id: ids[i] } : {}),
      ...(positioned ? { position: { epoch, ms, offset: first + i } } : {}),
    }));
  }

  /** The events of the lines from index `from` on (all of them: built once). */
  events(from = 0): PreparedDeviceLogEvent[] {
    if (from > 0) return this.build(this.lines.slice(from));
    this.shared ??= this.build(this.lines);
    return this.shared;
  }
}

export interface PreparedDeviceLogEvent {
  event: PreparedEvent;
  /** Position of its first line: a send that did not go out rewinds the track to just before it. */
  first: StreamPosition | undefined;
  /** Position of its last line: acknowledged by the gateway, it becomes the checkpoint. */
  last: StreamPosition | undefined;
}

/**
 * Outcomes after which the lines may never have reached the browser while this pod still owns the
 * connection: the fence refused the send (the lease looked about to end, yet may be renewed) or
 * every retry failed. `dropped` (a slow connection's full queue) is told to the browser instead,
 * and `not_found` / `discarded` mean the connection is gone or no longer ours.
 */
const RESEND_AFTER: ReadonlySet<string> = new Set(['fenced', 'failed']);

export interface StreamDeliveryOptions {
  owned: OwnedConnections;
  gateway: GatewayClient;
  streams: DeviceStreams;
  metrics: ForwardingMetrics;
  logger: Logger;
  /** LOG_ENTITY_FIELD: what a cut document keeps. */
  entityField: string;
}

/**
 * Delivery of each entity to each owned connection by stream position (docs/streams-api.md):
 * - a live batch is sent from the connection's next offset on: lines at or before its position
 *   are never sent again (a repeated batch, a replay that already covered them);
 * - a batch starting beyond the next offset (the pod was not listening yet, or the connection
 *   starts from a recorded position) first fills the gap from the device's window, in order;
 * - a recorded position (a take-over's checkpoint, a subscribe's start or `since`) is replayed
 *   from the window at once, so quiet devices catch up too;
 * - what the gateway accepts moves the (connection, entity) checkpoint, which the lease renewal
 *   writes (`takeCheckpoints`) — never a Redis write per send.
 * Per (connection, entity) everything runs in order: while a replay reads, later batches queue.
 */
export class StreamDelivery {
  private readonly dirty = new Map<StreamTrack, Owned>();

  constructor(private readonly opts: StreamDeliveryOptions) {}

  /** Events of lines of one entity (split under the body limit, long docs cut). */
  events(entityId: string, lines: readonly EventLine[]): PreparedDeviceLogEvent[] {
    const onTruncated = () => this.opts.metrics.truncatedDocs.inc();
    return deviceLogEventData(entityId, lines, { entityField: this.opts.entityField, onTruncated }).map(toPrepared);
  }

  /** A live batch for one watching connection. */
  live(conn: Owned, batch: LiveBatch): void {
    const { message } = batch;
    // An ingest without the window: sent at once, as before (during a take-over's grace the fence drops it).
    if (message.epoch === undefined || message.stream_ms === undefined || message.first_offset === undefined) {
      return this.send(conn, undefined, batch.events(), message.received_at_ms);
    }
    const entityId = message.device_entity_id;
    let track = conn.tracks.get(entityId);
    if (!track) {
      track = newTrack(entityId);
      conn.tracks.set(entityId, track);
    }
    const t = track;
    this.run(conn, t, () => this.applyLive(conn, t, batch));
  }

  /**
   * Delivery of `entityId` to `conn` continues after `cursor` (a recorded position): replays the
   * window from there. An existing track moves back only (a resume `since` before what it sent);
   * resolves once the replay is done.
   */
  startAfter(conn: Owned, entityId: string, cursor: string, reason: ReplayReason): Promise<void> {
    const start = parseCursor(cursor);
    if (!start || !conn.entities.has(entityId)) return Promise.resolve();
    let track = conn.tracks.get(entityId);
    if (!track) {
      track = newTrack(entityId);
      conn.tracks.set(entityId, track);
    }
    const t = track;
    return this.run(conn, t, () => {
      if (t.epoch === start.epoch && t.offset === start.offset) return;
      setPosition(t, start);
      return this.replay(conn, t, reason);
    });
  }

  /** The changed checkpoints of connections still owned; `written()` after the renewal wrote them. */
  takeCheckpoints(): { checkpoints: Checkpoint[]; written(): void } {
    const checkpoints: Checkpoint[] = [];
    const sent = new Map<StreamTrack, StreamPosition>();
    for (const [track, conn] of this.dirty) {
      if (!this.current(conn, track) || !track.acked) {
        this.dirty.delete(track);
        continue;
      }
      checkpoints.push({ requestId: conn.requestId, token: conn.token, entityId: track.entityId, cursor: formatCursor(track.acked) });
      sent.set(track, track.acked);
    }
    return {
      checkpoints,
      written: () => {
        for (const [track, acked] of sent) if (track.acked === acked) this.dirty.delete(track);
      },
    };
  }

  /** Forgets the checkpoints not yet written (the lease was lost: the next owner replays from the last written). */
  clearCheckpoints(): void {
    this.dirty.clear();
  }

  // ---- internals ----------------------------------------------------------------------------------

  private current(conn: Owned, track: StreamTrack): boolean {
    return this.opts.owned.get(conn.requestId) === conn && conn.tracks.get(track.entityId) === track;
  }

  /** Runs `job` now when nothing of this track is in flight, else after what is (in order). */
  private run(conn: Owned, track: StreamTrack, job: () => void | Promise<void>): Promise<void> {
    const started = track.busy ? track.busy.then(job) : job();
    if (!started) return Promise.resolve();
    const held: Promise<void> = started
      .catch((err: Error) => this.opts.logger.warn({ err: err.message, requestId: conn.requestId, entityId: track.entityId }, 'stream delivery failed'))
      .then(() => {
        if (track.busy === held) track.busy = null;
      });
    track.busy = held;
    return held;
  }

  private applyLive(conn: Owned, track: StreamTrack, batch: LiveBatch): void | Promise<void> {
    if (!this.current(conn, track)) return;
    const { epoch, stream_ms: ms, first_offset: first } = batch.message as Required<LogChannelMessage>;
    // Lines wait out a take-over's grace (the fence would drop them): what the old owner also sent
    // in the meantime repeats with its cursor.
    const wait = conn.sendableAt - performance.now();
    if (wait > 0) return sleep(wait).then(() => this.applyLive(conn, track, batch));
    const last = first + batch.lines.length - 1;
    if (track.epoch !== epoch) setPosition(track, { epoch, ms, offset: first - 1 }); // first batch, or the history was reset
    if (last <= track.offset) {
      this.opts.metrics.skippedLines.inc(batch.lines.length);
      return;
    }
    if (first > track.offset + 1) return this.fillGap(conn, track, batch, first);
    this.sendFrom(conn, track, batch, first);
  }

  private async fillGap(conn: Owned, track: StreamTrack, batch: LiveBatch, first: number): Promise<void> {
    const { epoch, stream_ms: ms } = batch.message as Required<LogChannelMessage>;
    const read = await this.readOn(conn, track, 'gap');
    if (!this.current(conn, track)) return;
    if (read !== 'ok' || track.epoch !== epoch || track.offset + 1 < first) {
      // The window no longer holds the missing lines: the client sees the offsets jump.
      const missing = track.epoch === epoch ? first - 1 - track.offset : 0;
      if (missing > 0) this.opts.metrics.unrecoverableLines.inc(missing);
      setPosition(track, { epoch, ms, offset: first - 1 });
    }
    if (first + batch.lines.length - 1 <= track.offset) return;
    this.sendFrom(conn, track, batch, first);
  }

  private sendFrom(conn: Owned, track: StreamTrack, batch: LiveBatch, first: number): void {
    const from = track.offset + 1 - first;
    if (from > 0) this.opts.metrics.skippedLines.inc(from);
    this.send(conn, track, batch.events(Math.max(0, from)), batch.message.received_at_ms);
    const lastLine = batch.lines[batch.lines.length - 1]!;
    if (lastLine.position) setPosition(track, lastLine.position);
  }

  /** Replays the window after the track's position; when it cannot, continues from the device's position. */
  private async replay(conn: Owned, track: StreamTrack, reason: ReplayReason): Promise<void> {
    const wait = conn.sendableAt - performance.now();
    if (wait > 0) await sleep(wait);
    const result = await this.readOn(conn, track, reason);
    if (typeof result === 'object' && this.current(conn, track)) {
      if (result.epoch === track.epoch) this.opts.metrics.unrecoverableLines.inc(Math.max(0, result.offset - track.offset));
      setPosition(track, result);
    }
  }

  /**
   * Reads and sends the window after the track's position until caught up. 'ok', 'stale' (the
   * connection or track went away), or the device's position when the window does not hold the
   * line after the track's (trimmed, other epoch).
   */
  private async readOn(conn: Owned, track: StreamTrack, reason: ReplayReason): Promise<'ok' | 'stale' | StreamPosition> {
    for (;;) {
      if (track.epoch === undefined) return 'ok';
      const read = await this.opts.streams.read(track.entityId, { epoch: track.epoch, ms: track.ms, offset: track.offset }, REPLAY_PAGE);
      if (!this.current(conn, track)) return 'stale';
      if (!read.recoverable) return read.head;
      if (read.lines.length === 0) return 'ok';
      const lines = read.lines.map(toEventLine);
      this.opts.metrics.replayedLines.inc({ reason }, lines.length);
      this.send(conn, track, this.events(track.entityId, lines));
      setPosition(track, lines[lines.length - 1]!.position!);
      if (read.lines.length < REPLAY_PAGE) return 'ok';
    }
  }

  /**
   * The lines from `first` on did not go out (fenced, or failed for good) while this pod may still
   * own the connection: the track moves back to just before them, so the next batch fills the gap
   * from the window (repeats of lines that did go out carry their cursors) — or, if the device
   * sends nothing more, a replay RESEND_AFTER_MS later does. Without this, a pod that kept its
   * lease would never send them again.
   */
  private rewind(conn: Owned, track: StreamTrack, first: StreamPosition): void {
    if (!this.current(conn, track) || track.epoch !== first.epoch || track.offset < first.offset) return;
    setPosition(track, { epoch: first.epoch, ms: first.ms, offset: first.offset - 1 });
    if (track.resendTimer) return; // one replay covers every rewind until it runs
    track.resendTimer = setTimeout(() => {
      track.resendTimer = undefined;
      if (this.current(conn, track)) void this.run(conn, track, () => this.replay(conn, track, 'resend'));
    }, RESEND_AFTER_MS);
    track.resendTimer.unref();
  }

  /**
   * Queues the events to the connection; `receivedAt` (live batches): when ingest received them.
   * What the gateway accepts moves the track's checkpoint (no track: lines without positions).
   */
  private send(conn: Owned, track: StreamTrack | undefined, events: readonly PreparedDeviceLogEvent[], receivedAt?: number): void {
    const { metrics } = this.opts;
    for (const { event, first, last } of events) {
      // Positioned lines are sent again after a fenced or failed send (rewind): no `dropped` marker.
      const resent = track !== undefined && first !== undefined;
      void this.opts.gateway.send(conn.token, event, { service: event.name, gatewayUrl: conn.gateway, fenced: true, resent }).then((outcome) => {
        metrics.deviceLogEvents.inc({ status: outcome.status });
        if (RESEND_AFTER.has(outcome.status) && track && first) return this.rewind(conn, track, first);
        if (outcome.status !== 'ok') return;
        if (receivedAt !== undefined) metrics.ingestToAck.observe(Math.max(0, Date.now() - receivedAt) / 1000);
        if (!last || !track) return;
        if (!track.acked || track.acked.epoch !== last.epoch || track.acked.offset < last.offset) {
          track.acked = last;
          if (this.current(conn, track)) this.dirty.set(track, conn);
        }
      });
    }
  }
}

function setPosition(track: StreamTrack, position: StreamPosition): void {
  track.epoch = position.epoch;
  track.ms = position.ms;
  track.offset = position.offset;
}

function toPrepared(data: DeviceLogEventData): PreparedDeviceLogEvent {
  return { event: prepareEvent({ name: DEVICE_LOGS_EVENT, data: data.data }), first: data.first, last: data.last };
}

function toEventLine(line: StreamLine): EventLine {
  const position = parseCursor(line.cursor)!;
  return { json: line.doc, ...(line.id ? { id: line.id } : {}), position };
}
