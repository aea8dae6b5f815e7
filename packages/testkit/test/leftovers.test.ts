import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { LOCAL_REDIS_URL, adminQuery, findLeftovers, isolatedRedisPrefix } from '../src/index.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/leftovers-cli.js', import.meta.url));
const newRunId = () => `z${randomBytes(4).toString('hex')}`;

t.test('findLeftovers names the keys and databases of its run only, and nothing once they are gone', async (t) => {
  const runId = newRunId();
  const otherRun = newRunId();
  const redis = new Redis(LOCAL_REDIS_URL);
  const database = `iot_test_${runId}_leftover`;
  t.teardown(async () => {
    await redis.del(`test_${runId}_a:{rt}:pods`, `test_${otherRun}_b:{rt}:pods`);
    redis.disconnect();
    await adminQuery(`drop database if exists "${database}" with (force)`);
  });

  t.same(await findLeftovers(runId), { redisKeys: [], databases: [] }, 'a fresh run left nothing');
  await redis.set(`test_${runId}_a:{rt}:pods`, '1');
  await redis.set(`test_${otherRun}_b:{rt}:pods`, '1');
  await adminQuery(`create database "${database}"`);
  t.same(await findLeftovers(runId), { redisKeys: [`test_${runId}_a:{rt}:pods`], databases: [database] }, 'its own, not the other run\'s');

  await redis.del(`test_${runId}_a:{rt}:pods`);
  await adminQuery(`drop database "${database}" with (force)`);
  t.same(await findLeftovers(runId), { redisKeys: [], databases: [] }, 'nothing once deleted');
  await t.rejects(findLeftovers('not a run id!'), 'a run id that could widen the pattern is refused');
});

t.test('the CLI exits 1 naming what a run left, 0 when it left nothing', async (t) => {
  const runId = newRunId();
  const redis = new Redis(LOCAL_REDIS_URL);
  t.teardown(async () => {
    await redis.del(`test_${runId}_c:{bull}:rotation:meta`);
    redis.disconnect();
  });
  const clean = await run(process.execPath, [CLI, runId]);
  t.equal(clean.stdout, '', 'nothing to name');

  await redis.hset(`test_${runId}_c:{bull}:rotation:meta`, 'opts.maxLenEvents', '10000');
  const failed = await run(process.execPath, [CLI, runId]).then(
    () => undefined,
    (err: { code: number; stdout: string }) => err,
  );
  t.equal(failed?.code, 1, 'exit code 1');
  t.match(failed?.stdout, `test_${runId}_c:{bull}:rotation:meta`, 'the key is named');
});

t.test('isolatedRedisPrefix deletes keys written by teardowns registered after it', async (t) => {
  const redis = new Redis(LOCAL_REDIS_URL);
  t.teardown(() => redis.disconnect());
  let prefix = '';
  await t.test('a test whose app writes while it closes', async (t) => {
    prefix = isolatedRedisPrefix(t);
    await redis.set(`${prefix}:{rt}:counts`, '1');
    // Registered later, so it runs first: like a pod that deregisters from the fleet on close.
    t.teardown(async () => {
      await redis.zadd(`${prefix}:{rt}:pods`, 0, '1');
    });
  });
  t.equal(await redis.exists(`${prefix}:{rt}:counts`, `${prefix}:{rt}:pods`), 0, 'nothing under the prefix once the test ended');
});
