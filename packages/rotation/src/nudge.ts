/**
 * Who asked for a `rotation-updated` broadcast (label of `sse_rotation_nudge_broadcast_total`):
 * `web` for the api's REST and device-facing routes, `worker` for scheduled jobs, `internal` for
 * `POST /internal/rotation-nudge`.
 */
export type NudgeSource = 'web' | 'worker' | 'internal';

/**
 * The broadcast path of the forwarding package, seen from rotation: one call makes every SSE
 * connection receive one `rotation-updated` event. Rotation calls it only after the change it
 * announces has been committed. The apps wire contracts' `publishRotationNudge` in (api:
 * routes/rotation.ts, worker: main.ts).
 */
export interface RotationNudger {
  nudge(source: NudgeSource): Promise<void>;
}
