import { accessTokenFromHeaders, TokenVerificationError, type HeaderBag } from '@iotsupport/auth';
import { AppError } from '@iotsupport/contracts';
import { LOCAL_USER_SUBJECT, type IdentityBindingStatus } from '@iotsupport/realtime-state';
import type { SseContext } from './sse-context.js';

export interface ConnectionIdentity {
  subject: string;
  /** The token's exp in ms (contract: the binding ends "after exp"); 0 = never. */
  bindingExpiresAtMs: number;
}

/**
 * The identity a connect callback binds its connection to. OIDC off: `local-user`, forever.
 * OIDC on: the verified token's `sub` until its `exp` (the clock skew only tolerates clock
 * differences while verifying; it does not extend the binding); no or a bad token → 401
 * (the gateway turns it into an in-stream `rejected`), issuer unreachable → 503.
 */
export async function bindConnectionIdentity(ctx: SseContext, headers: HeaderBag, cookieName: string): Promise<ConnectionIdentity> {
  if (!ctx.verifier) {
    count(ctx, 'local_user');
    return { subject: LOCAL_USER_SUBJECT, bindingExpiresAtMs: 0 };
  }
  const verified = await verifyCaller(ctx, headers, cookieName, true);
  count(ctx, 'bound');
  return { subject: verified.sub, bindingExpiresAtMs: verified.exp * 1000 };
}

/** The caller's `sub` on the public routes: null with OIDC off (no caller identity), else a valid token is required. */
export async function callerSubject(ctx: SseContext, headers: HeaderBag, cookieName: string): Promise<string | null> {
  if (!ctx.verifier) return null;
  return (await verifyCaller(ctx, headers, cookieName, false)).sub;
}

async function verifyCaller(ctx: SseContext, headers: HeaderBag, cookieName: string, binding: boolean) {
  const verifier = ctx.verifier as NonNullable<SseContext['verifier']>;
  const token = accessTokenFromHeaders(headers, cookieName);
  if (!token) {
    if (binding) count(ctx, 'no_token');
    throw new AppError('UNAUTHORIZED');
  }
  try {
    return await verifier.verifyAccessToken(token);
  } catch (err) {
    if (binding) count(ctx, err instanceof TokenVerificationError && err.reason === 'jwks_unavailable' ? 'verifier_unavailable' : 'invalid_token');
    throw err;
  }
}

function count(ctx: SseContext, status: IdentityBindingStatus): void {
  ctx.metrics.identityBinding.inc({ status });
}
