/**
 * `stream-alive`: the owning api pod's sign of life on every SSE stream it serves
 * (docs/streams-api.md, "Signs of life"). The gateway's own heartbeats are SSE comments a page
 * never sees, so without this a stream nobody serves any more (its owner died and Redis lost the
 * registry before a take-over) would look exactly like a quiet device.
 *
 * `next_within_s`: the owner's promise that something (this event again, or any other) follows
 * within that many seconds while the stream is served, take-overs included. A client that hears
 * nothing for that long reopens its stream (the client module does).
 */
export const STREAM_ALIVE_EVENT = 'stream-alive';

export interface StreamAlivePayload {
  next_within_s: number;
}

/**
 * How long a served stream can stay silent at most: a probe every `probeIntervalSeconds` (each
 * checked once a second), and across a take-over the dead owner's last probe, the lease running
 * out and the new owner's first probe — plus slack for a busy gateway.
 */
export function streamAliveWithinSeconds(probeIntervalSeconds: number, leaseSeconds: number): number {
  return 2 * probeIntervalSeconds + leaseSeconds + 5;
}

/** The event's data (single-line JSON, as the gateway needs). */
export function streamAliveData(nextWithinSeconds: number): string {
  return JSON.stringify({ next_within_s: nextWithinSeconds } satisfies StreamAlivePayload);
}
