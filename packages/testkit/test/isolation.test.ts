import t from 'tap';
import pg from 'pg';
import { createTestDatabase, uniqueRedisPrefix, uniqueTopicPrefix, eventually } from '../src/index.js';

t.test('each test database is created empty and dropped', async (t) => {
  const db = await createTestDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query("select count(*)::int as n from information_schema.tables where table_schema = 'public'");
  t.equal(rows[0].n, 0, 'a new database has no tables');
  await client.end();
  await db.drop();
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  const gone = await admin.query('select 1 from pg_database where datname = $1', [db.name]);
  await admin.end();
  t.equal(gone.rowCount, 0, 'drop removes it');
});

t.test('prefixes never repeat', async (t) => {
  const seen = new Set(Array.from({ length: 1000 }, () => uniqueRedisPrefix()));
  t.equal(seen.size, 1000);
  t.match(uniqueTopicPrefix(), /\/$/, 'a topic root ends with a slash');
});

t.test('eventually reports the unmet condition', async (t) => {
  await t.rejects(eventually(() => false, 50), /not met within 50 ms/);
  t.equal(await eventually(() => 42), 42);
});
