import { Redis } from 'ioredis';
import { LOCAL_REDIS_URL, RUN_ID_PATTERN, adminQuery } from './isolation.js';

export interface Leftovers {
  redisKeys: string[];
  databases: string[];
}

/**
 * What a test run tagged `runId` (TEST_RUN_ID) left behind: Redis keys under `test_<runId>_` and
 * databases whose name carries `_<runId>_` (uniqueId puts the tag in every name it makes).
 */
export async function findLeftovers(runId: string, redisUrl = LOCAL_REDIS_URL): Promise<Leftovers> {
  if (!RUN_ID_PATTERN.test(runId)) throw new Error(`a run id is 1-16 lowercase letters or digits, got "${runId}"`);
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const redisKeys: string[] = [];
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `test_${runId}_*`, 'COUNT', 1000);
      redisKeys.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  const rows = await adminQuery<{ datname: string }>('select datname from pg_database where strpos(datname, $1) > 0 order by datname', [`_${runId}_`]);
  return { redisKeys: redisKeys.sort(), databases: rows.map((r) => r.datname) };
}
