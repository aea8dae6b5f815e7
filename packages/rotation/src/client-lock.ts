import { sql, type Kysely } from 'kysely';

/**
 * The one lock that orders every write of a device client's state at the identity provider
 * (a provisioning that sets a new secret, an outbox row being applied): a transaction-level
 * advisory lock on the client id. It works for clients whose device row is already gone.
 */
// biome-ignore lint/suspicious/noExplicitAny: any schema: the lock runs raw SQL only
export async function lockDeviceClient(trx: Kysely<any>, clientId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`idp-client:${clientId}`}, 0))`.execute(trx);
}
