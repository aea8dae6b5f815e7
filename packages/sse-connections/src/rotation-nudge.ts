import { encodeRotationNudge, rotationNudgeChannel, type RotationNudgeSource } from '@iotsupport/contracts';

/** Anything that can PUBLISH (an ioredis client): the worker need not depend on more. */
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
