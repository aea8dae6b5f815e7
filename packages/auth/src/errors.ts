import { AppError } from '@iotsupport/contracts';

/** Why a token was refused; a metric label and a log field, never shown to clients. */
export type TokenRejection =
  | 'malformed'
  | 'algorithm'
  | 'unknown_key'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'jwks_unavailable';

/**
 * A token we refuse: 401 INVALID_TOKEN to the client (a request with no token at all is answered
 * UNAUTHORIZED by the caller, without this error). When the issuer's keys cannot be fetched at all,
 * 503: the token may well be valid.
 */
export class TokenVerificationError extends AppError {
  constructor(readonly reason: TokenRejection, detail?: string) {
    super(reason === 'jwks_unavailable' ? 'SERVICE_UNAVAILABLE' : 'INVALID_TOKEN', undefined, detail ? { reason, detail } : { reason });
    this.name = 'TokenVerificationError';
  }
}
