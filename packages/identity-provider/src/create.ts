import type { IdentityProvider } from './identity-provider.js';
import { KeycloakIdentityProvider } from './keycloak.js';

/** The configuration fields the identity provider reads (a subset of @iotsupport/config's Config). */
export interface IdentityProviderConfig {
  OIDC_ENABLED: boolean;
  OIDC_ISSUER_URL?: string | undefined;
  OIDC_AUDIENCE?: string | undefined;
  IDP_ADMIN_CLIENT_ID?: string | undefined;
  IDP_ADMIN_CLIENT_SECRET?: string | undefined;
  IDP_REQUEST_TIMEOUT_MS: number;
}

/**
 * Keycloak when OIDC is on and a service account is configured (config refuses production without
 * one); otherwise none, and secrets stay the api's own (local development, tests without an IdP).
 */
export function createIdentityProvider(config: IdentityProviderConfig): IdentityProvider | undefined {
  if (!config.OIDC_ENABLED || !config.IDP_ADMIN_CLIENT_ID || !config.IDP_ADMIN_CLIENT_SECRET) return undefined;
  return new KeycloakIdentityProvider({
    issuerUrl: config.OIDC_ISSUER_URL!,
    audience: config.OIDC_AUDIENCE!,
    adminClientId: config.IDP_ADMIN_CLIENT_ID,
    adminClientSecret: config.IDP_ADMIN_CLIENT_SECRET,
    timeoutMs: config.IDP_REQUEST_TIMEOUT_MS,
  });
}
