import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * A decoder for one kind of JSON message between our processes: parse, then check against the
 * schema compiled once at load (the log channel's is on the hot path; `Value.Check` would re-walk
 * the schema for every batch). undefined for anything that is not such a message; never throws.
 */
export function jsonMessageDecoder<T extends TSchema>(schema: T): (raw: string | Buffer) => Static<T> | undefined {
  const validator = Compile(schema);
  return (raw) => {
    let value: unknown;
    try {
      value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
    } catch {
      return undefined;
    }
    return validator.Check(value) ? (value as Static<T>) : undefined;
  };
}
