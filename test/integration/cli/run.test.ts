/**
 * `kopf-ts run` as users run it: TypeScript files loaded without a build, from folders with
 * or without a package.json; clear load errors; graceful stop on SIGINT; handlers retried
 * after the process is killed in the middle of one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { kubectl, kubectlJson, sharedCluster, testNamespace } from '../../support/cluster.ts';
import { startCli } from '../../support/cli.ts';
import { installTestCrd } from '../../support/operator.ts';

before(async () => installTestCrd(await sharedCluster()));

function tempOperator(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-op-'));
  const file = join(dir, 'operator.ts');
  writeFileSync(file, source);
  return file;
}

test('a syntax error names the file and line, without a stack dump', async (t) => {
  const file = tempOperator(
    "import { on } from 'kopf-ts';\non.create('kopftests.kopf-ts.dev', function create_fn() {\n  const x = ;\n});\n",
  );
  const cli = startCli(t, undefined, ['run', file, '-n', 'default']);
  assert.equal(await cli.exited, 1);
  const text = cli.output.join('\n');
  assert.match(text, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+`));
  assert.doesNotMatch(text, /^\s+at /m, 'no stack trace');
});

test('an operator in a folder without package.json runs, handles objects, and stops on SIGINT', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const file = tempOperator(`import { on, type HandlerContext } from 'kopf-ts';
class Handlers {
  @on.create('kopftests.kopf-ts.dev')
  static create_fn({ logger, spec }: HandlerContext<{ greeting: string }>) {
    logger.info(\`greeting: \${spec.greeting}\`);
    return { said: spec.greeting };
  }
}
void Handlers;
`);
  const cli = startCli(t, cluster, ['run', file, '--namespace', ns]);
  await cli.waitFor('Starting the watch-stream for kopftests.v1.kopf-ts.dev');
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    'apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: hello}\nspec: {greeting: hej}\n',
  );
  await cli.waitFor(`[${ns}/hello] Handler 'create_fn' succeeded.`);
  assert.ok(cli.output.some((l) => l.includes(`[${ns}/hello] greeting: hej`)));
  const obj = await kubectlJson<{ status: { create_fn: unknown } }>(cluster, [
    'get',
    'kopftests.kopf-ts.dev',
    'hello',
    '-n',
    ns,
  ]);
  assert.deepEqual(obj.status.create_fn, { said: 'hej' });
  cli.kill('SIGINT');
  assert.equal(await cli.exited, 0);
  assert.ok(cli.output.some((l) => l.includes('The operator has stopped.')));
});

test('killed in the middle of a handler, the operator retries it after a restart', async (t) => {
  const cluster = await sharedCluster();
  const ns = await testNamespace(t, cluster);
  const file = tempOperator(`import { on, TemporaryError } from 'kopf-ts';
on.create('kopftests.kopf-ts.dev', async function slow_fn({ retry, logger }) {
  logger.info(\`attempt retry=\${retry}\`);
  if (retry === 0) throw new TemporaryError('first attempt always fails', { delay: 1 });
  if (retry === 1) await new Promise((r) => setTimeout(r, 60_000)); // killed here
  return { retry };
});
`);
  const first = startCli(t, cluster, ['run', file, '-n', ns]);
  await first.waitFor('Starting the watch-stream');
  await kubectl(
    cluster,
    ['apply', '-n', ns, '-f', '-'],
    'apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: slow}\nspec: {a: 1}\n',
  );
  await first.waitFor(`[${ns}/slow] attempt retry=1`);
  first.kill('SIGKILL');
  await first.exited;
  // The progress record survived the kill: the restarted operator goes on from retry 1.
  const record = await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(cluster, [
    'get',
    'kopftests.kopf-ts.dev',
    'slow',
    '-n',
    ns,
  ]);
  assert.equal(
    (JSON.parse(record.metadata.annotations['kopf.zalando.org/slow_fn']!) as { retries: number }).retries,
    1,
  );
  const second = startCli(t, cluster, ['run', file, '-n', ns]);
  await second.waitFor(`[${ns}/slow] attempt retry=1`);
  assert.ok(!second.output.some((l) => l.includes('retry=0')), 'the first attempt is not repeated');
  second.kill('SIGKILL');
  await second.exited;
  const after = await kubectlJson<{
    metadata: { annotations: Record<string, string> };
    status?: Record<string, unknown>;
  }>(cluster, ['get', 'kopftests.kopf-ts.dev', 'slow', '-n', ns]);
  assert.equal(
    (JSON.parse(after.metadata.annotations['kopf.zalando.org/slow_fn']!) as { retries: number }).retries,
    1,
    'an interrupted attempt is not counted as done',
  );
  assert.equal(after.status?.slow_fn, undefined);
});
