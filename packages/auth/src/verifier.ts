import { createVerifier, TokenError, type Algorithm } from 'fast-jwt';
import { TokenVerificationError, type TokenRejection } from './errors.js';
import { JwksResolver, type JwksResolverOptions } from './jwks.js';

/** Asymmetric algorithms only: `none` and every HS* are refused (an HS256 token "signed" with our public key included). */
const ASYMMETRIC_ALGORITHMS: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

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
  if (te.originalError instanceof TokenVerificationError) return te.originalError;
  return new TokenVerificationError(FAST_JWT_REASONS[te.code] ?? 'malformed', te.message);
}

/**
 * JWT verification for users (and, via `azp`, devices) with fast-jwt — what @fastify/jwt builds
 * on — and the JWKS resolver (jwks.ts). The key is looked up by the header's `kid` before any signature check.
 */
export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const jwks = new JwksResolver(options);
  const verify = createVerifier({
    algorithms: ASYMMETRIC_ALGORITHMS,
    // iss and aud are checked below, by us, so a refusal says which one failed.
    clockTolerance: options.clockSkewSeconds * 1000,
    requiredClaims: ['sub', 'exp', 'iss', 'aud'],
    // No fast-jwt token cache: it keeps refusals for clockTolerance ms, so a token whose key was
    // just rotated in would stay refused; a signature check costs well under a millisecond.
    cache: false,
    key: async (decoded: { header: { alg?: unknown; kid?: unknown } }) => {
      const { alg, kid } = decoded.header;
      // Refuse before any key fetch: a forged header must not make us call the issuer.
      if (typeof alg !== 'string' || !(ASYMMETRIC_ALGORITHMS as string[]).includes(alg)) {
        throw new TokenVerificationError('algorithm', `algorithm ${String(alg)} is not allowed`);
      }
      if (typeof kid !== 'string' || kid === '') throw new TokenVerificationError('unknown_key', 'token has no kid');
      return jwks.publicKey(kid, alg);
    },
  });

  return {
    async verifyAccessToken(token: string): Promise<VerifiedToken> {
      let claims: Record<string, unknown>;
      try {
        claims = (await verify(token)) as Record<string, unknown>;
      } catch (err) {
        throw classify(err);
      }
      const { sub, exp, azp, iss, aud } = claims;
      if (iss !== options.issuerUrl) throw new TokenVerificationError('issuer', `iss ${JSON.stringify(iss)} is not ${options.issuerUrl}`);
      if (!(Array.isArray(aud) ? aud.includes(options.audience) : aud === options.audience)) {
        throw new TokenVerificationError('audience', `aud does not contain ${options.audience}`);
      }
      if (typeof sub !== 'string' || sub === '') throw new TokenVerificationError('claims', 'sub must be a non-empty string');
      if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new TokenVerificationError('claims', 'exp must be a number');
      return { sub, exp, iss, claims, ...(typeof azp === 'string' ? { azp } : {}) };
    },
  };
}
