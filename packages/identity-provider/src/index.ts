export { IdentityProviderRejectedError, IdentityProviderUnavailableError, type IdentityProvider } from './identity-provider.js';
export { KeycloakIdentityProvider, type KeycloakOptions } from './keycloak.js';
export { keycloakUrls, type KeycloakUrls } from './keycloak-urls.js';
export { createIdentityProvider, type IdentityProviderConfig } from './create.js';
