import { STREAM_ALIVE_EVENT } from '@iotsupport/contracts/stream-alive';
import { DeviceStream, type DeviceStreamNotice } from './device-stream.js';
import { Listeners } from './listeners.js';
import { SubscribeError, postDeviceLogs } from './subscribe-api.js';
import type { ConnectionState, EventSourceConstructor, EventSourceLike, FetchLike, LiveClientEvents, LiveClientOptions, SubscribeAnswer } from './types.js';

interface WatchedDevice {
  entityId: string | undefined;
  firstAnswer: Promise<SubscribeAnswer>;
  settle: { resolve(answer: SubscribeAnswer): void; reject(err: Error): void } | undefined;
}

export interface LiveClientStats {
  /** Lines received again (same or older offset, or a known id) and not shown: a take-over's repeats. */
  duplicatesDropped: number;
  /** Streams opened again after the first. */
  reconnects: number;
  /** Of those, reopened because the stream went silent for longer than the server promised (`silent`). */
  silentReopens: number;
}

export interface LiveClient {
  readonly requestId: string;
  readonly state: ConnectionState;
  readonly stats: LiveClientStats;
  /**
   * Starts streaming a device (by id); resolves with the first subscribe answer. `resumeFrom`: a
   * position the page kept (a `lines` event's entity id and `cursorOf` it), e.g. across a reload:
   * the first subscribe then asks for the lines after it (`recovered` in the answer).
   */
  watch(deviceId: number, options?: { resumeFrom?: { deviceEntityId: string; cursor: string } }): Promise<SubscribeAnswer>;
  unwatch(deviceId: number): Promise<void>;
  /** The cursor the client would resume a device from (by entity id). */
  cursorOf(deviceEntityId: string): string | undefined;
  on<K extends keyof LiveClientEvents>(name: K, listener: (payload: LiveClientEvents[K]) => void): () => void;
  /** Closes the stream for good (the gateway then tells the api, which drops the subscriptions). */
  close(): void;
}

const DEFAULT_RECONNECT = { min: 500, max: 10_000 };
const DEFAULT_RESUME_TIMEOUT_MS = 10_000;

function randomRequestId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Watches devices' live logs through the SSE Gateway (docs/streams.md, "The client module"):
 * one stream per client (`<gatewayUrl>/events?request_id=<id>`), a subscribe per device, and after
 * every reconnect a resubscribe with `since` = the device's last cursor, so nothing is lost and
 * nothing is shown twice. Uses only EventSource, fetch and crypto.getRandomValues.
 */
export function createLiveClient(options: LiveClientOptions): LiveClient {
  const EventSourceImpl = options.EventSource ?? (globalThis as unknown as { EventSource?: EventSourceConstructor }).EventSource;
  const fetchImpl = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
  if (!EventSourceImpl || !fetchImpl) throw new TypeError('createLiveClient needs EventSource and fetch (pass them in options outside browsers)');
  const requestId = options.requestId ?? randomRequestId();
  const api = { fetch: fetchImpl, apiUrl: options.apiUrl ?? '', headers: options.headers ?? {}, withCredentials: options.withCredentials ?? false };
  const delays = options.reconnectDelayMs ?? DEFAULT_RECONNECT;
  const resumeTimeoutMs = options.resumeTimeoutMs ?? DEFAULT_RESUME_TIMEOUT_MS;

  const listeners = new Listeners<LiveClientEvents>();
  const devices = new Map<number, WatchedDevice>();
  const streams = new Map<string, DeviceStream>();
  const stats = { retiredDuplicates: 0, reconnects: 0, silentReopens: 0 };
  /** The server's `stream-alive` promise (ms): hearing nothing for longer, the stream is reopened. */
  let aliveWithinMs: number | undefined;
  let silenceTimer: ReturnType<typeof setTimeout> | undefined;
  let state: ConnectionState = 'connecting';
  let source: EventSourceLike | undefined;
  /** One per opened stream: answers and retries of an older stream's subscribes are ignored. */
  let generation = 0;
  let delay = delays.min;
  let reopenTimer: ReturnType<typeof setTimeout> | undefined;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  /** Devices unwatched while no stream was open: unsubscribed on the next `ready` (else the subscription would carry over). */
  const unsubscribeOnReady = new Set<number>();

  const setState = (next: ConnectionState): void => {
    if (state === next) return;
    state = next;
    listeners.emit('state', { state });
  };
  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const deviceIdOf = (entityId: string): number | undefined => {
    for (const [id, device] of devices) if (device.entityId === entityId) return id;
    return undefined;
  };

  function streamOf(entityId: string): DeviceStream {
    let stream = streams.get(entityId);
    if (!stream) {
      stream = new DeviceStream((notice) => relay(entityId, notice));
      streams.set(entityId, stream);
    }
    return stream;
  }

  function relay(deviceEntityId: string, notice: DeviceStreamNotice): void {
    const deviceId = deviceIdOf(deviceEntityId);
    if (notice.kind === 'lines') listeners.emit('lines', { deviceId, deviceEntityId, lines: notice.lines });
    else if (notice.kind === 'gap') listeners.emit('gap', { deviceId, deviceEntityId, after: notice.after, missing: notice.missing });
    else if (notice.kind === 'reset') listeners.emit('reset', { deviceId, deviceEntityId, from: notice.from, to: notice.to });
    else listeners.emit('unrecovered', { deviceId, deviceEntityId, since: notice.since, cursor: notice.cursor });
  }

  /**
   * Something arrived on the current stream: the silence watchdog starts again. Armed once the
   * server said how long it may be silent (`stream-alive`); a stream nobody serves any more (its
   * owner died and Redis lost the registry before a take-over) is reopened, and the resume by
   * cursor then tells what was missed.
   */
  function heard(es: EventSourceLike): void {
    clearTimeout(silenceTimer);
    if (aliveWithinMs === undefined) return;
    const silentFor = aliveWithinMs;
    silenceTimer = setTimeout(() => {
      if (es !== source) return;
      stats.silentReopens += 1;
      listeners.emit('silent', { silentForMs: silentFor });
      reopen(es);
    }, silentFor);
  }

  function onEnvelope(data: string): void {
    let envelope: { type?: unknown; payload?: unknown };
    try {
      envelope = JSON.parse(data) as typeof envelope;
    } catch {
      return; // not the gateway's envelope
    }
    if (typeof envelope.type !== 'string' || typeof envelope.payload !== 'object' || envelope.payload === null) return;
    const payload = envelope.payload as { dropped?: unknown; device_entity_id?: unknown; logs?: unknown; ids?: unknown; cursor?: unknown };
    if (typeof payload.dropped === 'number' && payload.dropped > 0) listeners.emit('dropped', { type: envelope.type, dropped: payload.dropped });
    if (envelope.type === STREAM_ALIVE_EVENT) {
      const within = (payload as { next_within_s?: unknown }).next_within_s;
      if (typeof within === 'number' && within > 0) aliveWithinMs = within * 1000;
      return;
    }
    if (envelope.type !== 'device-logs') return listeners.emit('event', { type: envelope.type, payload });
    if (typeof payload.device_entity_id !== 'string' || !Array.isArray(payload.logs)) return;
    const ids = Array.isArray(payload.ids) ? (payload.ids as string[]) : undefined;
    const cursor = typeof payload.cursor === 'string' ? payload.cursor : undefined;
    streamOf(payload.device_entity_id).receive(payload.logs as Record<string, unknown>[], ids, cursor);
  }

  function open(): void {
    const current = ++generation;
    if (current > 1) stats.reconnects += 1;
    // The gateway writes events sent during the connect callback before `ready`: hold from now.
    for (const device of devices.values()) {
      const stream = device.entityId === undefined ? undefined : streams.get(device.entityId);
      if (stream?.resumeCursor !== undefined) stream.beginResume();
    }
    const es = new EventSourceImpl!(`${options.gatewayUrl}/events?request_id=${encodeURIComponent(requestId)}`, { withCredentials: api.withCredentials });
    source = es;
    es.addEventListener('ready', () => {
      if (es !== source) return;
      heard(es);
      delay = delays.min;
      setState('connected');
      for (const deviceId of devices.keys()) void subscribe(deviceId, current);
      for (const deviceId of unsubscribeOnReady) void unsubscribe(deviceId);
    });
    es.addEventListener('rejected', (event) => {
      if (es !== source) return;
      let reason = { status: 0, message: '' };
      try {
        reason = JSON.parse(event.data) as typeof reason;
      } catch {
        // keep the empty reason
      }
      shutdown();
      listeners.emit('rejected', reason);
    });
    es.onmessage = (event) => {
      if (es !== source) return;
      onEnvelope(event.data);
      heard(es);
    };
    es.onerror = () => {
      if (es === source) reopen(es);
    };
  }

  /** Our own reconnect (not EventSource's): also after a non-200 answer, where browsers give up. */
  function reopen(es: EventSourceLike): void {
    es.close();
    source = undefined;
    clearTimeout(silenceTimer);
    setState('reconnecting');
    const wait = delay;
    delay = Math.min(delays.max, delay * 2);
    reopenTimer = setTimeout(open, wait * (0.75 + Math.random() * 0.5));
  }

  async function subscribe(deviceId: number, current: number): Promise<void> {
    const device = devices.get(deviceId);
    if (!device || current !== generation) return;
    const stream = device.entityId === undefined ? undefined : streamOf(device.entityId);
    const since = stream?.resumeCursor;
    if (since !== undefined) stream!.beginResume();
    try {
      const answer = await postDeviceLogs(api, 'subscribe', { requestId, deviceId, ...(since === undefined ? {} : { since }) });
      if (current !== generation || devices.get(deviceId) !== device) return; // a newer stream resubscribes
      device.entityId = answer.device_entity_id;
      const settled = streamOf(answer.device_entity_id);
      if (answer.cursor === undefined) settled.finishResume();
      else settled.answer(answer.cursor, since, answer.recovered);
      if (settled.resuming) later(resumeTimeoutMs, () => settled.finishResume());
      device.settle?.resolve(answer);
      device.settle = undefined;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (error instanceof SubscribeError && error.retryable) {
        later(delay, () => void subscribe(deviceId, current));
        return;
      }
      stream?.finishResume();
      devices.delete(deviceId);
      device.settle?.reject(error);
      listeners.emit('error', { deviceId, error });
    }
  }

  async function unsubscribe(deviceId: number): Promise<void> {
    unsubscribeOnReady.delete(deviceId);
    if (devices.has(deviceId)) return; // watched again meanwhile
    await postDeviceLogs(api, 'unsubscribe', { requestId, deviceId }).catch((err: unknown) => {
      // Already gone (SUBSCRIPTION_NOT_FOUND) is fine; anything else is tried again on the next stream.
      if (err instanceof SubscribeError && err.retryable) unsubscribeOnReady.add(deviceId);
    });
  }

  function shutdown(): void {
    setState('closed');
    source?.close();
    source = undefined;
    clearTimeout(reopenTimer);
    clearTimeout(silenceTimer);
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  }

  open();

  return {
    requestId,
    get state() {
      return state;
    },
    get stats() {
      let duplicatesDropped = stats.retiredDuplicates;
      for (const stream of streams.values()) duplicatesDropped += stream.duplicates;
      return { duplicatesDropped, reconnects: stats.reconnects, silentReopens: stats.silentReopens };
    },
    watch(deviceId, watchOptions = {}) {
      const existing = devices.get(deviceId);
      if (existing) return existing.firstAnswer;
      let settle!: WatchedDevice['settle'];
      const firstAnswer = new Promise<SubscribeAnswer>((resolve, reject) => (settle = { resolve, reject }));
      firstAnswer.catch(() => undefined); // also reported as an `error` event
      const resumeFrom = watchOptions.resumeFrom;
      if (resumeFrom) streamOf(resumeFrom.deviceEntityId).seed(resumeFrom.cursor);
      devices.set(deviceId, { entityId: resumeFrom?.deviceEntityId, firstAnswer, settle });
      unsubscribeOnReady.delete(deviceId);
      if (state === 'connected') void subscribe(deviceId, generation);
      return firstAnswer;
    },
    async unwatch(deviceId) {
      const device = devices.get(deviceId);
      if (!device) return;
      devices.delete(deviceId);
      if (device.entityId !== undefined && deviceIdOf(device.entityId) === undefined) {
        stats.retiredDuplicates += streams.get(device.entityId)?.duplicates ?? 0;
        streams.delete(device.entityId);
      }
      if (state === 'connected') await unsubscribe(deviceId);
      else unsubscribeOnReady.add(deviceId);
    },
    cursorOf: (entityId) => streams.get(entityId)?.resumeCursor,
    on: (name, listener) => listeners.on(name, listener),
    close: shutdown,
  };
}
