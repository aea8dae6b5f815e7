import type { Algorithm, DecodedJwt } from 'fast-jwt';
import { TokenVerificationError } from './errors.js';
import type { JwksResolver } from './jwks.js';

/** Asymmetric algorithms only: `none` and every HS* are refused (an HS256 token "signed" with our public key included). */
export const ASYMMETRIC_ALGORITHMS: Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** Who a token must come from and be meant for (OIDC_ISSUER_URL, OIDC_AUDIENCE). */
export interface TokenAddressing {
  issuerUrl: string;
  audience: string;
}

/**
 * The key resolver @fastify/jwt hands to fast-jwt (a fast-jwt `KeyFetcher`): called with the
 * decoded, not yet verified token, it returns the issuer's public key for the header's `kid`.
 * It answers only for tokens this service could accept — allowed algorithm, our issuer, our
 * audience, a kid — and refuses the others with their reason before any key lookup, so a forged
 * header or a token of another issuer never makes us call the issuer. Refusing on unverified claims
 * is safe (accepting is still up to the signature check and fast-jwt's own iss/aud checks).
 */
export function signingKeyResolver(jwks: JwksResolver, addressing: TokenAddressing): (decoded: DecodedJwt) => Promise<string> {
  return async ({ header, payload }) => {
    const { alg, kid } = header as { alg?: unknown; kid?: unknown };
    if (typeof alg !== 'string' || !(ASYMMETRIC_ALGORITHMS as string[]).includes(alg)) {
      throw new TokenVerificationError('algorithm', `algorithm ${String(alg)} is not allowed`);
    }
    const { iss, aud } = payload as { iss?: unknown; aud?: unknown };
    if (iss !== addressing.issuerUrl) throw new TokenVerificationError('issuer', `iss ${JSON.stringify(iss)} is not ${addressing.issuerUrl}`);
    if (!(Array.isArray(aud) ? aud.includes(addressing.audience) : aud === addressing.audience)) {
      throw new TokenVerificationError('audience', `aud does not contain ${addressing.audience}`);
    }
    if (typeof kid !== 'string' || kid === '') throw new TokenVerificationError('unknown_key', 'token has no kid');
    return jwks.publicKey(kid, alg);
  };
}
