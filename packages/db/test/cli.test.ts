import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ADMIN_DATABASE_URL, adminQuery, uniqueId } from '@iotsupport/testkit';
import { createDb, DEMO_DEVICES } from '../src/index.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

t.test('migrate creates a missing database, seed is idempotent', async (t) => {
  const name = uniqueId('iot_cli').toLowerCase();
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const env = { ...process.env, DATABASE_URL: url.toString(), LOG_LEVEL: 'silent' };
  t.teardown(() => adminQuery(`drop database if exists "${name}" with (force)`));

  const first = await run(process.execPath, [CLI, 'migrate'], { env });
  t.match(first.stdout, `created database ${name}`);
  t.match(first.stdout, 'applied 0001_device_registry');
  const second = await run(process.execPath, [CLI, 'migrate'], { env });
  t.match(second.stdout, 'is up to date');

  await run(process.execPath, [CLI, 'seed'], { env });
  const again = await run(process.execPath, [CLI, 'seed'], { env });
  t.match(again.stdout, '0 new devices', 'a second seed adds nothing');

  const { db, close } = createDb(url.toString());
  t.teardown(close);
  const rows = await db.selectFrom('devices').select(['key', 'device_entity_id']).orderBy('key').execute();
  t.same(rows, DEMO_DEVICES.map((d) => ({ key: d.key, device_entity_id: d.config.deviceEntityId })));
  t.ok(rows.every((r) => /^sensor\.demo_\d$/.test(r.device_entity_id ?? '')), 'seeded devices carry entity ids');
});

t.test('a bad DATABASE_URL stops the CLI with a message naming it', async (t) => {
  const err = await run(process.execPath, [CLI, 'migrate'], { env: { ...process.env, DATABASE_URL: 'mysql://x' } }).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  t.not(err?.code, 0);
  t.match(err?.stderr, 'DATABASE_URL');
});

t.test('an unknown command prints the usage', async (t) => {
  const err = await run(process.execPath, [CLI, 'frobnicate']).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  t.equal(err?.code, 64);
  t.match(err?.stderr, 'usage');
});
