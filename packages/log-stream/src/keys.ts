import { deviceLogName, logChannelName } from '@iotsupport/contracts';

/**
 * The Redis names of one device's log stream (docs/streams.md has the table and redis-cli recipes).
 * All carry the device's hash tag (contracts' deviceHashTag), so one Cluster slot holds them and
 * the scripts may touch them together; the tag's escaping is why no two devices' names alias.
 */
export interface DeviceStreamKeys {
  /** Hash {epoch, ms, offset}: the epoch and the last line's stream time and offset. */
  head: string;
  /** Stream: one entry per line, id `<ms>-<offset>`, fields `id` (Elasticsearch `_id`) and `doc` (JSON). */
  stream: string;
  /** Sorted set: batch ids already appended (score: their last offset), the most recent ones only. */
  batches: string;
  /** The device's pub/sub channel (contracts' logChannelName). */
  channel: string;
}

export function deviceStreamKeys(redisKeyPrefix: string, entityId: string): DeviceStreamKeys {
  return {
    head: deviceLogName(redisKeyPrefix, entityId, 'head'),
    stream: deviceLogName(redisKeyPrefix, entityId, 'stream'),
    batches: deviceLogName(redisKeyPrefix, entityId, 'batches'),
    channel: logChannelName(redisKeyPrefix, entityId),
  };
}
