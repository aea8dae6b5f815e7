import type { Redis } from 'ioredis';
import { formatCursor, type StreamPosition } from '@iotsupport/contracts';
import { defineStreamScripts, deviceStreamKeys, readAfterCursor, type ReadAfterCursor, type StreamRetention } from '@iotsupport/log-stream';

/** Where a subscribe starts delivering a device to a connection, and what its caller is told. */
export interface ResumePoint {
  /** Delivery continues after this cursor: `since` when recovered, else the device's position. */
  start: string;
  /** The device's current position (the answer's `cursor`). */
  cursor: string;
  /** Only with `since`: whether every line after it is still in the window. */
  recovered?: boolean;
}

/** The api side's reads of the devices' retained windows (packages/log-stream). */
export class DeviceStreams {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly retention: StreamRetention,
  ) {
    defineStreamScripts(redis);
  }

  /** The lines of the device's window after `since` (at most `limit`), atomically with its position. */
  read(entityId: string, since: StreamPosition | undefined, limit: number): Promise<ReadAfterCursor> {
    return readAfterCursor(this.redis, deviceStreamKeys(this.prefix, entityId), this.retention, since, limit);
  }

  /**
   * Where a subscription of `entityId` starts: after `since` when the window still holds the line
   * right after it (same epoch, not trimmed), else at the device's current position.
   */
  async resumePoint(entityId: string, since: StreamPosition | undefined): Promise<ResumePoint> {
    const read = await this.read(entityId, since, 1);
    const cursor = formatCursor(read.head);
    if (since === undefined) return { start: cursor, cursor };
    if (read.recoverable) return { start: formatCursor(since), cursor, recovered: true };
    return { start: cursor, cursor, recovered: false };
  }
}
