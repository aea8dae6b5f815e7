/**
 * What the rest of the system needs of the identity provider (Keycloak in production): every device
 * is a confidential OAuth client `iotdevice-<model code>-<key>` with a service account, and the
 * secret the api hands a device is the one the identity provider accepts.
 *
 * Every operation is idempotent and describes a desired state, so a retry after a crash or an
 * outage (the outbox, packages/rotation/src/device-clients.ts) can simply run it again.
 */
export interface IdentityProvider {
  /**
   * Makes the client exist (confidential, service account enabled, the api's audience in its
   * tokens). With `secret`, the client's secret becomes exactly that value; without it, an
   * existing client keeps its secret and a new one gets the identity provider's own.
   */
  upsertDeviceClient(clientId: string, secret?: string): Promise<void>;
  /** Makes the client not exist (a client already gone is fine). */
  deleteDeviceClient(clientId: string): Promise<void>;
  /** The secret the identity provider accepts for the client now; undefined when there is no such client. */
  getClientSecret(clientId: string): Promise<string | undefined>;
}

/**
 * The identity provider could not be reached or did not answer in time (or answered 5xx, or
 * refused our service account's credentials): the outcome of a write is unknown, retry later.
 */
export class IdentityProviderUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityProviderUnavailableError';
  }
}

/** The identity provider answered, and refused the request (a 4xx other than 401): a configuration problem. */
export class IdentityProviderRejectedError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'IdentityProviderRejectedError';
  }
}
