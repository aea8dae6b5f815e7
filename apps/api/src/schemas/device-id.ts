import { Type } from 'typebox';

const INT4_MAX = 2_147_483_647;

/**
 * `:id` of `/api/devices/:id...`: the canonical decimal form of a positive PostgreSQL integer
 * (int4). `1.5`, `01`, `+1`, `1e3` and `2147483648` are 400 VALIDATION_FAILED, never looked up
 * (the type provider would otherwise convert "1.5" to 1). The handler reads it with `Number()`.
 */
export const DeviceIdParams = Type.Object(
  {
    id: Type.Refine(
      Type.String({ pattern: '^[1-9][0-9]{0,9}$', description: `A device id: a positive integer up to ${INT4_MAX}, no sign, no leading zero` }),
      (id) => Number(id) <= INT4_MAX,
      () => `must be at most ${INT4_MAX}`,
    ),
  },
  { additionalProperties: false },
);
