import { MAX_CURSOR_LENGTH } from './stream-cursor.js';
import { Type, type Static } from 'typebox';

/**
 * Bodies the SSE Gateway POSTs to `POST /api/sse/callback` (shared/reference/sse-gateway-protocol.md).
 * Header names are lower-case; repeated headers arrive joined into one string, only `set-cookie`
 * as an array — so a value is `string | string[]`. Unknown extra properties are tolerated: the
 * gateway is not ours and may add fields.
 */
export const GatewayHeaders = Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())]));

export const GatewayRequestInfo = Type.Object({
  /** Raw path and query of the browser's GET, e.g. `/events?request_id=abc123`. */
  url: Type.String(),
  headers: Type.Optional(GatewayHeaders),
});

export const GatewayConnectCallback = Type.Object({
  action: Type.Literal('connect'),
  token: Type.String({ minLength: 1 }),
  request: GatewayRequestInfo,
});

export const GatewayDisconnectCallback = Type.Object({
  action: Type.Literal('disconnect'),
  /** `client_closed` | `server_closed` | `error` today; any string accepted (logged, not acted on). */
  reason: Type.Optional(Type.String()),
  token: Type.String({ minLength: 1 }),
  request: GatewayRequestInfo,
});

export const GatewayCallback = Type.Union([GatewayConnectCallback, GatewayDisconnectCallback]);

export type GatewayHeaders = Static<typeof GatewayHeaders>;
export type GatewayConnectCallback = Static<typeof GatewayConnectCallback>;
export type GatewayDisconnectCallback = Static<typeof GatewayDisconnectCallback>;
export type GatewayCallback = Static<typeof GatewayCallback>;

/** `request_id` rule of the contract: 1–128 characters of `[A-Za-z0-9_-]` (also a Redis key part). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export function isValidRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value);
}

/** Body of `POST /api/device-logs/subscribe` and `/unsubscribe`: exactly these two fields. */
export const DeviceLogSubscriptionBody = Type.Object(
  {
    request_id: Type.String({ pattern: REQUEST_ID_PATTERN.source, description: 'request_id of the SSE connection (1-128 of [A-Za-z0-9_-])' }),
    device_id: Type.Integer({ description: 'id of the device whose logs to stream' }),
  },
  { additionalProperties: false },
);
export type DeviceLogSubscriptionBody = Static<typeof DeviceLogSubscriptionBody>;

/**
 * Body of `POST /api/device-logs/subscribe`: the two fields, plus an optional resume cursor
 * (docs/streams.md). A malformed `since` is refused with INVALID_CURSOR (400).
 */
export const DeviceLogSubscribeBody = Type.Object(
  {
    ...DeviceLogSubscriptionBody.properties,
    since: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_CURSOR_LENGTH,
        description: 'resume after this stream cursor of the device (the cursor of the last line the client has)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type DeviceLogSubscribeBody = Static<typeof DeviceLogSubscribeBody>;

export const DeviceLogSubscribed = Type.Object({
  status: Type.Literal('subscribed'),
  device_entity_id: Type.String(),
  cursor: Type.String({ description: "the device's current position: delivery to the connection continues after it (or after since, when recovered)" }),
  recovered: Type.Optional(
    Type.Boolean({ description: 'only with since: true = every line after since follows, then live; false = the window no longer holds them (or the epoch changed), delivery starts at cursor' }),
  ),
});
export const DeviceLogUnsubscribed = Type.Object({ status: Type.Literal('unsubscribed') });
