import type { StreamPosition } from '@iotsupport/contracts';

/**
 * Where the delivery of one entity to one owned connection stands (stream-delivery.ts).
 * `epoch`/`ms`/`offset`: the last line sent, or the start to send after; the next line to send
 * is `offset + 1`. `epoch` undefined: no position yet, delivery starts with the next live batch.
 */
export interface StreamTrack {
  readonly entityId: string;
  epoch: string | undefined;
  ms: number;
  offset: number;
  /** The last line the gateway accepted (the checkpoint to write), if any. */
  acked: StreamPosition | undefined;
  /** A replay, gap fill or wait in progress: later batches queue behind it, in order. */
  busy: Promise<void> | null;
  /** Set after a rewind: the window is read again then, even if no batch of the device comes. */
  resendTimer: NodeJS.Timeout | undefined;
}

export function newTrack(entityId: string, start?: StreamPosition): StreamTrack {
  return { entityId, epoch: start?.epoch, ms: start?.ms ?? 0, offset: start?.offset ?? 0, acked: undefined, busy: null, resendTimer: undefined };
}
