#!/usr/bin/env -S node --max-semi-space-size=2
// The kopf-ts command. Needs Node >= 22.19 (as @kubernetes/client-node 2.x does):
// with an older `node` first on PATH, it re-runs itself with a newer one found in the
// project (the npm package `node` as a dependency), or says clearly what is needed.
//
// V8's young generation is capped at 2 MiB a semi-space (the `#!` line; default 16 MiB): an
// operator's bursts would otherwise grow it for good, ~35 MB of RSS that an idle operator keeps
// (docs/performance.md: same CPU in a burst). `node [flags] .../kopf-ts.js` chooses otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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
  const flags = ['--max-semi-space-size=2', ...process.execArgv];
  const result = spawnSync(node, [...flags, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, KOPF_TS_REEXEC: '1' },
  });
  process.exit(result.status ?? 1);
}

/** Newest modification time (ms) of the files under a folder. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  return latest;
}

/**
 * A source checkout (the workspace; tsconfig.json is not published) runs the built files when
 * `tsc -b` has built them since the sources last changed (faster start, less memory), and the
 * TypeScript sources through tsx otherwise. Operators' `import 'kopf-ts'` lands in the same copy
 * (cli/load.ts).
 */
function runSources() {
  const root = join(here, '..');
  if (!existsSync(join(root, 'tsconfig.json'))) return false;
  const built = join(root, 'tsconfig.tsbuildinfo');
  return (
    !existsSync(join(root, 'dist', 'cli', 'main.js')) ||
    !existsSync(built) ||
    statSync(built).mtimeMs < newest(join(root, 'src'))
  );
}

let main;
if (runSources()) {
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[Symbol.for('kopf-ts.tsx-registered')] = true;
  ({ main } = await import(join(here, '..', 'src', 'cli', 'main.ts')));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
await main(process.argv);
