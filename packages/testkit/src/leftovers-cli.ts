#!/usr/bin/env node
/**
 * `node packages/testkit/dist/src/leftovers-cli.js <run id>`: the last step of `make test`.
 * Exits 1 naming every Redis key and database the run left behind, 0 when there are none.
 */
import { findLeftovers } from './leftovers.js';

const runId = process.argv[2] ?? '';
const { redisKeys, databases } = await findLeftovers(runId);
for (const key of redisKeys) process.stdout.write(`left behind: Redis key ${key}\n`);
for (const name of databases) process.stdout.write(`left behind: database ${name}\n`);
process.exitCode = redisKeys.length + databases.length > 0 ? 1 : 0;
