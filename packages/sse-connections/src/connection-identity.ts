import { accessTokenFromHeaders, TokenVerificationError, type AccessTokenVerifier, type HeaderBag } from '@iotsupport/auth';
import { AppError } from '@iotsupport/contracts';
import { LOCAL_USER_SUBJECT, type IdentityBindingStatus, type RegistryMetrics } from '@iotsupport/realtime-state';

export interface ConnectionIdentity {
  subject: string;
  /** The token's exp in ms (contract: the binding ends "after exp"); 0 = never. */
  bindingExpiresAtMs: number;
}

/**
 * Who opens an SSE connection, from the access token of the connect callback's headers (bearer or
 * OIDC_COOKIE_NAME cookie). `verifier` null = OIDC off. Counts every connect binding in
 * `sse_identity_binding_total`. (The public routes' callers are authenticated by the api's route
 * rules, apps/api/src/route-auth.ts.)
 */
export class CallerIdentity {
  constructor(
    private readonly verifier: AccessTokenVerifier | null,
    private readonly cookieName: string,
    private readonly metrics: RegistryMetrics,
  ) {}

  /**
   * The identity a connect callback binds its connection to. OIDC off: `local-user`, forever.
   * OIDC on: the verified token's `sub` until its `exp` (the clock skew only tolerates clock
   * differences while verifying; it does not extend the binding); no or a bad token → 401
   * (the gateway turns it into an in-stream `rejected`), issuer unreachable → 503.
   */
  async bindConnection(headers: HeaderBag): Promise<ConnectionIdentity> {
    if (!this.verifier) {
      this.count('local_user');
      return { subject: LOCAL_USER_SUBJECT, bindingExpiresAtMs: 0 };
    }
    const verified = await this.verify(this.verifier, headers);
    this.count('bound');
    return { subject: verified.sub, bindingExpiresAtMs: verified.exp * 1000 };
  }

  private async verify(verifier: AccessTokenVerifier, headers: HeaderBag) {
    const token = accessTokenFromHeaders(headers, this.cookieName);
    if (!token) {
      this.count('no_token');
      throw new AppError('UNAUTHORIZED');
    }
    try {
      return await verifier.verifyAccessToken(token);
    } catch (err) {
      this.count(err instanceof TokenVerificationError && err.reason === 'jwks_unavailable' ? 'verifier_unavailable' : 'invalid_token');
      throw err;
    }
  }

  private count(status: IdentityBindingStatus): void {
    this.metrics.identityBinding.inc({ status });
  }
}
