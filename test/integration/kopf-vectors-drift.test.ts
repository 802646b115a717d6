/**
 * The committed Kopf vectors are what the pinned Kopf produces today: regenerate them with the
 * real Kopf from PyPI (test/kopf/venv.sh) and fail on any drift. Needs python3 and PyPI.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;

test('test/vectors/kopf-state.json matches a fresh run of the real Kopf', (t) => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
  } catch {
    t.skip('python3 is not installed');
    return;
  }
  const python = execFileSync('bash', [join(root, 'test/kopf/venv.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const out = join(mkdtempSync(join(tmpdir(), 'kopf-vectors-')), 'kopf-state.json');
  execFileSync(python, [join(root, 'test/kopf/gen_vectors.py'), out], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const fresh = readFileSync(out, 'utf8');
  const committed = readFileSync(join(root, 'test/vectors/kopf-state.json'), 'utf8');
  assert.ok(
    fresh === committed,
    `regenerated vectors differ from the committed ones (diff ${out} test/vectors/kopf-state.json)`,
  );
});
