import { Type, type Static } from 'typebox';
import { jsonMessageDecoder } from './json-message.js';
import { formatCursor } from './stream-cursor.js';

/**
 * The Redis pub/sub fan-out from ingest to the api fleet: one channel per device entity id.
 *
 * Ingest appends each stored batch to the device's Redis Stream and PUBLISHes it in one atomic
 * step (packages/log-stream), after Elasticsearch accepted the lines and before it acknowledges
 * the MQTT message. A crash in between makes the broker redeliver; the same `batch_id` is then
 * neither appended nor published again. Subscribers still drop a `batch_id` they have already
 * handled on that channel. Per channel, messages arrive in MQTT receive order.
 *
 * Names: every key and the channel of one device carry the hash tag `{<device tag>}` (so a Redis
 * Cluster keeps them in one slot, and the append script may touch them all). The device tag is the
 * entity id with `%` written `%25` and `}` written `%7D`: a tag then never ends early (Redis takes
 * the tag up to the first `}`), is never empty, and two entity ids never share one. Every name ends
 * with `}:<kind>` where no kind contains `}`, so names of two devices or two kinds never alias.
 */

const TAG_ESCAPES: Record<string, string> = { '%': '%25', '}': '%7D' };
const TAG_UNESCAPES: Record<string, string> = { '%25': '%', '%7D': '}' };

/** The entity id as it appears between `{` and `}` in the device's key and channel names. */
export function deviceHashTag(entityId: string): string {
  return entityId.replace(/[%}]/g, (c) => TAG_ESCAPES[c]!);
}

/** `${REDIS_KEY_PREFIX}:log:{<device tag>}:<kind>`: a key or the channel of one device. */
export function deviceLogName(redisKeyPrefix: string, entityId: string, kind: string): string {
  return `${redisKeyPrefix}:log:{${deviceHashTag(entityId)}}:${kind}`;
}

/** `${REDIS_KEY_PREFIX}:log:{<device tag>}:live` — the device's channel. */
export function logChannelName(redisKeyPrefix: string, entityId: string): string {
  return deviceLogName(redisKeyPrefix, entityId, 'live');
}

/** PSUBSCRIBE pattern matching every entity's channel under a prefix. */
export function logChannelPattern(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}:log:{*}:live`;
}

/** The entity id a channel name carries, or undefined when it is not a log channel of this prefix. */
export function entityIdFromLogChannel(redisKeyPrefix: string, channel: string): string | undefined {
  const head = `${redisKeyPrefix}:log:{`;
  const tail = '}:live';
  if (!channel.startsWith(head) || !channel.endsWith(tail) || channel.length <= head.length + tail.length) return undefined;
  const tag = channel.slice(head.length, -tail.length);
  if (tag.includes('}')) return undefined;
  return tag.replace(/%25|%7D/g, (e) => TAG_UNESCAPES[e]!);
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
    /**
     * The lines' ids (their Elasticsearch `_id`), one per doc. Optional while subscribers that
     * predate the stream window run; ingest always sends them.
     */
    ids: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /**
     * Where the docs are in the device's stream (stream-cursor.ts), set by the append script:
     * doc i has the cursor `<epoch>:<stream_ms>-<first_offset + i>`.
     */
    epoch: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$' })),
    stream_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    first_offset: Type.Optional(Type.Integer({ minimum: 1 })),
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
  const frame = logChannelMessageFrame(header);
  return frame.beforeDocs + docsJson.join(',') + frame.afterDocs;
}

/**
 * The text of a channel message around its docs: the message is `beforeDocs`, the docs' JSON
 * joined with commas, then `afterDocs`. The append script (packages/log-stream) receives the frame
 * and the docs once each, joins them the same way, and writes epoch, stream_ms and first_offset
 * in place of the closing brace as this function does: a test holds the published text to it.
 */
export function logChannelMessageFrame(header: LogChannelHeader): { beforeDocs: string; afterDocs: string } {
  const beforeDocs = `{"v":${header.v},"batch_id":${JSON.stringify(header.batch_id)},"device_entity_id":${JSON.stringify(header.device_entity_id)},"docs":[`;
  let afterDocs = `],"received_at_ms":${header.received_at_ms},"ingested_at_ms":${header.ingested_at_ms}`;
  if (header.ids !== undefined) afterDocs += `,"ids":${JSON.stringify(header.ids)}`;
  if (header.epoch !== undefined) afterDocs += `,"epoch":${JSON.stringify(header.epoch)}`;
  if (header.stream_ms !== undefined) afterDocs += `,"stream_ms":${header.stream_ms}`;
  if (header.first_offset !== undefined) afterDocs += `,"first_offset":${header.first_offset}`;
  return { beforeDocs, afterDocs: afterDocs + '}' };
}

/** The cursor of the doc at `index` of a message carrying stream positions, else undefined. */
export function docCursor(message: LogChannelMessage, index: number): string | undefined {
  if (message.epoch === undefined || message.stream_ms === undefined || message.first_offset === undefined) return undefined;
  return formatCursor({ epoch: message.epoch, ms: message.stream_ms, offset: message.first_offset + index });
}

/** JSON text of one channel message; the same assembly ingest uses, for docs given as objects. */
export function encodeLogChannelMessage(message: LogChannelMessage): string {
  const { docs, ...header } = message;
  return assembleLogChannelMessage(header, docs.map((doc) => JSON.stringify(doc)));
}

/** Parses and validates a channel message; undefined for anything that is not one (never throws). */
export const decodeLogChannelMessage = jsonMessageDecoder(LogChannelMessageSchema);
