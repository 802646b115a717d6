#!/usr/bin/env node
// The kopf-ts command. Needs Node >= 22.19 (as @kubernetes/client-node 2.x and undici 8 do):
// with an older `node` first on PATH, it re-runs itself with a newer one found in the
// project (the npm package `node` as a dependency), or says clearly what is needed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);

function findNode() {
  for (let dir of [process.cwd(), here]) {
    for (;;) {
      const candidate = join(dir, 'node_modules', 'node', 'bin', 'node');
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

if (major < 22 || (major === 22 && minor < 19)) {
  const node = process.env.KOPF_TS_REEXEC ? undefined : findNode();
  if (!node) {
    process.stderr.write(
      `kopf-ts needs Node.js >= 22.19; this is ${process.version} (${process.execPath}).\n` +
        'Install a newer Node.js, or add it to the project: npm install -D node@24\n',
    );
    process.exit(1);
  }
  const result = spawnSync(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, KOPF_TS_REEXEC: '1' },
  });
  process.exit(result.status ?? 1);
}

const source = join(here, '..', 'src', 'cli', 'main.ts');
let main;
if (existsSync(join(here, '..', 'tsconfig.json'))) {
  // A source checkout (the workspace; tsconfig.json is not published): run the TypeScript
  // sources through tsx, so that the CLI and operators importing 'kopf-ts' share one copy.
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[Symbol.for('kopf-ts.tsx-registered')] = true;
  ({ main } = await import(source));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
await main(process.argv);
