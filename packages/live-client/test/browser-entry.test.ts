import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../src');
const ALLOWED_PACKAGES = new Set(['@iotsupport/contracts/stream-cursor', '@iotsupport/contracts/stream-alive']);

/** Every module the browser entry loads, following relative imports from index.js. */
function importGraph(file: string, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(file)) return seen;
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
  seen.set(file, specifiers.filter((s) => !s.startsWith('.')));
  for (const s of specifiers.filter((s) => s.startsWith('.'))) importGraph(join(dirname(file), s), seen);
  return seen;
}

t.test('the browser entry loads no Node-only module and no package but the cursor and stream-alive helpers', async (t) => {
  const graph = importGraph(join(SRC, 'index.js'));
  t.ok(graph.size >= 4, `follows the entry's modules (${graph.size})`);
  for (const [file, packages] of graph) {
    for (const name of packages) t.ok(ALLOWED_PACKAGES.has(name), `${file.slice(SRC.length + 1)} imports ${name}`);
  }
  t.notOk(graph.has(join(SRC, 'node.js')), 'the Node entry is not part of it');
});

t.test('the contract helpers it loads are browser-safe too', async (t) => {
  for (const name of ALLOWED_PACKAGES) {
    const file = fileURLToPath(import.meta.resolve(name));
    t.same(importGraph(file).get(file), [], `${name} imports nothing`);
  }
});
