import fastifyJwt from '@fastify/jwt';
import Fastify from 'fastify';
import { TokenError } from 'fast-jwt';
import { TokenVerificationError, type TokenRejection } from './errors.js';
import { JwksResolver, type JwksResolverOptions } from './jwks.js';
import { ASYMMETRIC_ALGORITHMS, signingKeyResolver } from './signing-key.js';

export interface AccessTokenVerifierOptions extends JwksResolverOptions {
  /** OIDC_AUDIENCE: `aud` must contain it. */
  audience: string;
  /** OIDC_CLOCK_SKEW_SECONDS: tolerance for `exp` and `nbf`. */
  clockSkewSeconds: number;
}

/** The verified claims callers use; `claims` has all of them. */
export interface VerifiedToken {
  sub: string;
  /** Seconds since the epoch, as in the token. */
  exp: number;
  /** Authorized party (the client id): device tokens are matched on it. */
  azp?: string;
  iss: string;
  claims: Record<string, unknown>;
}

export interface AccessTokenVerifier {
  /** Verifies signature (JWKS by kid), algorithm, iss, aud, exp/nbf (with skew) and sub. Throws TokenVerificationError. */
  verifyAccessToken(token: string): Promise<VerifiedToken>;
}

const FAST_JWT_REASONS: Partial<Record<string, TokenRejection>> = {
  [TokenError.codes.malformed]: 'malformed',
  [TokenError.codes.invalidType]: 'malformed',
  [TokenError.codes.invalidPayload]: 'malformed',
  [TokenError.codes.invalidAlgorithm]: 'algorithm',
  [TokenError.codes.invalidKey]: 'algorithm',
  [TokenError.codes.missingSignature]: 'signature',
  [TokenError.codes.invalidSignature]: 'signature',
  [TokenError.codes.expired]: 'expired',
  [TokenError.codes.inactive]: 'not_yet_valid',
  [TokenError.codes.missingRequiredClaim]: 'claims',
  [TokenError.codes.invalidClaimType]: 'claims',
  [TokenError.codes.invalidClaimValue]: 'claims',
  [TokenError.codes.invalidCritHeader]: 'malformed',
};

function classify(err: unknown): TokenVerificationError {
  if (err instanceof TokenVerificationError) return err;
  const te = err as TokenError & { originalError?: unknown };
  // the key resolver's refusals reach us wrapped by fast-jwt (FAST_JWT_KEY_FETCHING_ERROR)
  if (te.originalError instanceof TokenVerificationError) return te.originalError;
  return new TokenVerificationError(FAST_JWT_REASONS[te.code] ?? 'malformed', te.message);
}

/** A non-empty `sub` (fast-jwt's `requiredClaims` only asks that the claim exists). */
const NON_EMPTY = /^[\s\S]+$/;

/**
 * @fastify/jwt in verify-only mode on a private Fastify instance that never listens: its
 * `fastify.jwt.verify(token)` runs fast-jwt with the options below and, as the public key, the
 * resolver of signing-key.ts (fast-jwt's key-fetcher shape; @fastify/jwt's `(request, token)`
 * secret functions only work with `request.jwtVerify`, and callers here verify tokens that are not
 * their request's own: the gateway callback carries the client's headers in its body).
 */
async function registerJwt(options: AccessTokenVerifierOptions, jwks: JwksResolver) {
  const app = Fastify({ logger: false });
  await app.register(fastifyJwt, {
    secret: { public: signingKeyResolver(jwks, options) },
    verify: {
      algorithms: ASYMMETRIC_ALGORITHMS,
      allowedIss: options.issuerUrl,
      allowedAud: options.audience,
      allowedSub: NON_EMPTY,
      requiredClaims: ['sub', 'exp', 'iss', 'aud'],
      clockTolerance: options.clockSkewSeconds * 1000,
      // No token cache: fast-jwt keeps refusals for a while, so a token whose key was just
      // rotated in would stay refused; a signature check costs well under a millisecond.
      cache: false,
    },
  });
  return app.jwt;
}

/**
 * JWT verification for users (and, via `azp`, devices): @fastify/jwt (fast-jwt) checks the
 * signature, algorithm, iss, aud, exp/nbf with skew and the required claims; the key comes from the
 * issuer's JWKS by `kid` (jwks.ts), looked up only for tokens addressed to us (signing-key.ts).
 */
export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const registered = registerJwt(options, new JwksResolver(options));
  // a registration failure (a bad option) is reported by every verification, not as an unhandled rejection
  registered.catch(() => undefined);

  return {
    async verifyAccessToken(token: string): Promise<VerifiedToken> {
      const jwt = await registered; // a bad option fails here, as itself (not as a refused token)
      let claims: Record<string, unknown>;
      try {
        claims = await jwt.verify<Record<string, unknown>>(token);
      } catch (err) {
        throw classify(err);
      }
      const { sub, exp, azp, iss } = claims;
      // fast-jwt checked these; narrowed here for the types
      if (typeof sub !== 'string' || typeof exp !== 'number' || typeof iss !== 'string') throw new TokenVerificationError('claims', 'sub, exp or iss has the wrong type');
      return { sub, exp, iss, claims, ...(typeof azp === 'string' ? { azp } : {}) };
    },
  };
}
