import { Type, type Static } from 'typebox';
import { jsonMessageDecoder } from './json-message.js';

/**
 * The Redis pub/sub fan-out from ingest to the api fleet: one channel per device entity id.
 *
 * Ingest PUBLISHes after Elasticsearch accepted the lines and before it acknowledges the MQTT
 * message, so a crash in between republishes the same lines with the same `batch_id` (the broker
 * redelivers; ids are derived from the MQTT payload). Subscribers drop a `batch_id` they have
 * already handled on that channel. Per channel, messages arrive in MQTT receive order.
 */

/** `${REDIS_KEY_PREFIX}:logs:${entityId}` — the entity id is used verbatim. */
export function logChannelName(redisKeyPrefix: string, entityId: string): string {
  return `${redisKeyPrefix}:logs:${entityId}`;
}

/** PSUBSCRIBE pattern matching every entity's channel under a prefix. */
export function logChannelPattern(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}:logs:*`;
}

/** The entity id a channel name carries, or undefined when it is not a log channel of this prefix. */
export function entityIdFromLogChannel(redisKeyPrefix: string, channel: string): string | undefined {
  const head = `${redisKeyPrefix}:logs:`;
  return channel.startsWith(head) && channel.length > head.length ? channel.slice(head.length) : undefined;
}

export const LOG_CHANNEL_MESSAGE_VERSION = 1;

export const LogChannelMessageSchema = Type.Object(
  {
    /** Format version; bumped on any incompatible change. */
    v: Type.Literal(LOG_CHANNEL_MESSAGE_VERSION),
    /**
     * Deterministic: `<sha256 of the MQTT payload, base64url>.<part>`. The same MQTT message
     * republished after an ingest crash carries the same id on the same channel: drop repeats.
     */
    batch_id: Type.String({ minLength: 1, maxLength: 128 }),
    /** The value of LOG_ENTITY_FIELD of every doc, as a string (also the channel's suffix). */
    device_entity_id: Type.String({ minLength: 1 }),
    /** Stored Elasticsearch documents (`_source`), in line order. */
    docs: Type.Array(Type.Record(Type.String(), Type.Unknown()), { minItems: 1 }),
    /** Epoch ms when ingest received the MQTT message (also the docs' `@timestamp`). */
    received_at_ms: Type.Integer({ minimum: 0 }),
    /** Epoch ms when the store accepted the lines and ingest published this message. */
    ingested_at_ms: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export type LogChannelMessage = Static<typeof LogChannelMessageSchema>;

/** Every field of a channel message but its docs. */
export type LogChannelHeader = Omit<LogChannelMessage, 'docs'>;

/**
 * JSON text of one channel message from docs that are already JSON text (ingest serialises each
 * line once, at parse time, and reuses that text for Elasticsearch and for this message). The
 * result is exactly what `JSON.stringify` makes of the decoded message, in schema order.
 */
export function assembleLogChannelMessage(header: LogChannelHeader, docsJson: readonly string[]): string {
  return (
    `{"v":${header.v},"batch_id":${JSON.stringify(header.batch_id)},"device_entity_id":${JSON.stringify(header.device_entity_id)}` +
    `,"docs":[${docsJson.join(',')}],"received_at_ms":${header.received_at_ms},"ingested_at_ms":${header.ingested_at_ms}}`
  );
}

/** JSON text of one channel message; the same assembly ingest uses, for docs given as objects. */
export function encodeLogChannelMessage(message: LogChannelMessage): string {
  const { docs, ...header } = message;
  return assembleLogChannelMessage(header, docs.map((doc) => JSON.stringify(doc)));
}

/** Parses and validates a channel message; undefined for anything that is not one (never throws). */
export const decodeLogChannelMessage = jsonMessageDecoder(LogChannelMessageSchema);
