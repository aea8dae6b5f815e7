import { readFileSync } from 'node:fs';
import type { ChainableCommander, Redis } from 'ioredis';

/**
 * The package's Lua scripts, plain files under src/lua, each prefixed with src/lua/head.lua (the
 * head helpers they share) and registered with ioredis `defineCommand` (EVALSHA with EVAL
 * fallback; pipelines load them first). `tsc -b` does not copy `.lua` files: the compiled module
 * reads them from the package's src/lua (dist/src ↔ src, as in realtime-state).
 */
const LUA_DIR = new URL('../../src/lua/', import.meta.url);
const lua = (file: string) => readFileSync(new URL(`${file}.lua`, LUA_DIR), 'utf8');

const SCRIPTS = { logStreamAppendBatch: 'append-batch', logStreamReadAfterCursor: 'read-after-cursor' } as const;

type Method = keyof typeof SCRIPTS;
export type ScriptTarget = Redis | ChainableCommander;
type Callable = Record<Method, (...keysThenArgs: (string | number)[]) => Promise<unknown> | ChainableCommander>;

/** Defines the scripts on a client (once); its pipelines then have them too. */
export function defineStreamScripts(redis: Redis): void {
  const client = redis as unknown as Partial<Callable>;
  for (const [method, file] of Object.entries(SCRIPTS) as [Method, string][]) {
    if (typeof client[method] !== 'function') redis.defineCommand(method, { numberOfKeys: 3, lua: `${lua('head')}\n${lua(file)}` });
  }
}

/** Calls a script on a client or queues it on a pipeline of a client it was defined on. */
export function callScript(target: ScriptTarget, method: Method, keysThenArgs: (string | number)[]): Promise<unknown> | ChainableCommander {
  return (target as unknown as Callable)[method](...keysThenArgs);
}
