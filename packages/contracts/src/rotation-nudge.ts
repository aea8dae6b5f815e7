import { Type, type Static } from 'typebox';
import { jsonMessageDecoder } from './json-message.js';

/**
 * The `rotation-updated` broadcast between processes: any api pod or the worker PUBLISHes one
 * message on this channel; every api pod sends `rotation-updated` `{}` to each connection it owns,
 * so each connection gets it exactly once (forwarding owns the sending side, docs/forwarding.md).
 * The publisher lives here, beside the channel's format, so the worker needs nothing but contracts.
 */

/** `${REDIS_KEY_PREFIX}:rotation-nudge`. */
export function rotationNudgeChannel(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}:rotation-nudge`;
}

/** Who asked (label `source` of `sse_rotation_nudge_broadcast_total`). */
export const NUDGE_SOURCES = ['web', 'worker', 'internal'] as const;
export type RotationNudgeSource = (typeof NUDGE_SOURCES)[number];

export const RotationNudgeMessageSchema = Type.Object(
  {
    v: Type.Literal(1),
    source: Type.Enum(NUDGE_SOURCES),
    /** Epoch ms when it was published (lag metrics). */
    at_ms: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export type RotationNudgeMessage = Static<typeof RotationNudgeMessageSchema>;

export function encodeRotationNudge(source: RotationNudgeSource, atMs = Date.now()): string {
  return JSON.stringify({ v: 1, source, at_ms: atMs } satisfies RotationNudgeMessage);
}

/** undefined for anything that is not a nudge message (never throws). */
export const decodeRotationNudge = jsonMessageDecoder(RotationNudgeMessageSchema);

/** Anything that can PUBLISH (an ioredis client): the publisher needs no more. */
export interface Publisher {
  publish(channel: string, message: string): Promise<number>;
}

/**
 * Publishes one `rotation-updated` nudge for the whole fleet: every api pod sends `{}` to each
 * connection it owns, so every connection gets it once. Call it after the change is committed.
 * Resolves with the number of api pods that heard it.
 */
export async function publishRotationNudge(redis: Publisher, prefix: string, source: RotationNudgeSource): Promise<number> {
  return redis.publish(rotationNudgeChannel(prefix), encodeRotationNudge(source));
}
