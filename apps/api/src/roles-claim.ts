/**
 * The role names at a dot path of a token's claims (OIDC_ROLES_CLAIM): Keycloak puts realm roles
 * at `realm_access.roles` and client roles at `resource_access.<client id>.roles`. The claim may be
 * an array of names or one name; anything else (or a missing claim) means no roles. Only own
 * properties are followed, so a path can never reach `__proto__` or `constructor`.
 */
export function rolesAt(claims: Record<string, unknown>, path: string): string[] {
  let value: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return [];
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((role): role is string => typeof role === 'string') : [];
}
