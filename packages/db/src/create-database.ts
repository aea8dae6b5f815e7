import pg from 'pg';

/** SQLSTATE 42P04: another process created the database between our check and our CREATE. */
const DUPLICATE_DATABASE = '42P04';

/**
 * Creates the database named in `url` when it does not exist, connecting to the server's
 * `postgres` maintenance database as the same user. Returns whether it created it.
 */
export async function ensureDatabaseExists(url: string): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount) return false;
    // Identifiers cannot be bound as parameters; pg's escapeIdentifier quotes them safely.
    await client.query(`create database ${client.escapeIdentifier(name)}`);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === DUPLICATE_DATABASE) return false;
    throw err;
  } finally {
    await client.end();
  }
}
