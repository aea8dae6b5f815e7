import { Type } from 'typebox';

/** Every error answer of the public api. */
export const ErrorBody = Type.Object(
  { error: Type.String(), code: Type.String() },
  { description: 'Every error: a human message and a stable code from the registry' },
);

/** The error responses a route documents, e.g. `...errorResponses(400, 404)`. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody]));
}
