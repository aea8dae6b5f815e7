import { Type } from 'typebox';

/**
 * What PostgreSQL's text and jsonb can store, checked in the request schemas so such input is a
 * 400 before any I/O (it used to reach the database and come back as a 500): no `\u0000`, no
 * unpaired UTF-16 surrogate (`"\ud800"`), and JSON nested at most MAX_JSON_DEPTH levels
 * (JSON.stringify and jsonb both recurse per level).
 */

/** Code points text can hold: anything but U+0000, surrogates only as pairs. */
export const STORABLE_TEXT_PATTERN = '^(?:[^\\u0000\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$';
const STORABLE_TEXT = new RegExp(STORABLE_TEXT_PATTERN);

/** Objects and arrays nested inside each other, the outermost counting as 1. */
export const MAX_JSON_DEPTH = 32;

export function isStorableText(value: string): boolean {
  return STORABLE_TEXT.test(value);
}

/** Why a parsed JSON value cannot be stored as jsonb, or null when it can. Iterative: any depth is safe to check. */
export function unstorableJsonReason(value: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (typeof next.value === 'string') {
      if (!isStorableText(next.value)) return 'contains a string with \\u0000 or an unpaired surrogate';
      continue;
    }
    if (typeof next.value !== 'object' || next.value === null) continue;
    if (next.depth > maxDepth) return `nests objects and arrays deeper than ${maxDepth} levels`;
    for (const [key, item] of Object.entries(next.value)) {
      if (!isStorableText(key)) return 'contains a key with \\u0000 or an unpaired surrogate';
      pending.push({ value: item, depth: next.depth + 1 });
    }
  }
  return null;
}

/** Any JSON PostgreSQL can store (what it must be beyond that, e.g. an object, is the route's business). */
export function StorableJson(options: { description: string }) {
  return Type.Refine(
    Type.Unknown(options),
    (value) => unstorableJsonReason(value) === null,
    (value) => `must be storable JSON: ${unstorableJsonReason(value) ?? ''}`,
  );
}

/** A string text columns can store, with the given length bounds. */
export function StorableString(options: { minLength?: number; maxLength: number; description?: string }) {
  return Type.String({ ...options, pattern: STORABLE_TEXT_PATTERN });
}
