/**
 * Keycloak's URLs, all derived from the issuer `https://host[/prefix]/realms/<realm>`:
 * the token endpoint is `<issuer>/protocol/openid-connect/token`, the admin API of the same realm
 * `https://host[/prefix]/admin/realms/<realm>`.
 */
export interface KeycloakUrls {
  realm: string;
  tokenUrl: string;
  adminRealmUrl: string;
}

const ISSUER = /^(https?:\/\/[^?#]+?)\/realms\/([^/?#]+)\/?$/;

export function keycloakUrls(issuerUrl: string): KeycloakUrls {
  const m = ISSUER.exec(issuerUrl);
  if (!m) throw new Error(`OIDC_ISSUER_URL must end with /realms/<realm> for the Keycloak admin API (got ${issuerUrl})`);
  const [, base, realm] = m as unknown as [string, string, string];
  return {
    realm: decodeURIComponent(realm),
    tokenUrl: `${base}/realms/${realm}/protocol/openid-connect/token`,
    adminRealmUrl: `${base}/admin/realms/${realm}`,
  };
}
