export { accessTokenFromHeaders, type HeaderBag } from './token-source.js';
export { TokenVerificationError, type TokenRejection } from './errors.js';
export type { JwksResolverOptions } from './jwks.js';
export { createAccessTokenVerifier, type AccessTokenVerifier, type AccessTokenVerifierOptions, type VerifiedToken } from './verifier.js';
