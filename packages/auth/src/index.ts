export { accessTokenFromHeaders, type HeaderBag } from './token-source.js';
export { TokenVerificationError, type TokenRejection } from './errors.js';
export { JwksResolver, type JwksResolverOptions } from './jwks.js';
export { createAccessTokenVerifier, ASYMMETRIC_ALGORITHMS, type AccessTokenVerifier, type AccessTokenVerifierOptions, type VerifiedToken } from './verifier.js';
