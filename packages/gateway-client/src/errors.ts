/**
 * Typed errors of the gateway client. Callers branch on `instanceof` or `code`, never on text.
 */
export class GatewayBodyTooLargeError extends Error {
  readonly code = 'GATEWAY_BODY_TOO_LARGE';
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`/internal/send body of ${bytes} bytes exceeds the ${limit}-byte limit: split the event`);
    this.name = 'GatewayBodyTooLargeError';
  }
}

/** `event.data` must be one line of JSON describing an object, so a `dropped` count can be added to it. */
export class GatewayEventDataError extends Error {
  readonly code = 'GATEWAY_EVENT_DATA_INVALID';
  constructor(reason: string) {
    super(`invalid event data: ${reason}`);
    this.name = 'GatewayEventDataError';
  }
}

/** `ready` and `rejected` are the gateway's own events (protocol page). */
export class GatewayReservedEventNameError extends Error {
  readonly code = 'GATEWAY_RESERVED_EVENT_NAME';
  constructor(name: string) {
    super(`event name "${name}" is reserved by the SSE Gateway`);
    this.name = 'GatewayReservedEventNameError';
  }
}
