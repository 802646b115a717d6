/**
 * The idle soak (long tier, `npm run test:long`): a kopf-ts operator process watching
 * IDLE_SOAK_OBJECTS objects (default 1000) with nothing to do for IDLE_SOAK_MINUTES (default 30),
 * through the apiserver's watch timeouts and the operator's reconnections. Every minute it
 * reports the RSS; it must not grow beyond noise (the last third of the samples against the
 * second third), and no handler may run again for an object already handled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../support/cluster.ts';
import { startCli } from '../support/cli.ts';
import { assertNoGrowth, rssMb } from '../support/memory.ts';
import { installTestCrd } from '../support/operator.ts';

const MINUTES = Number(process.env.IDLE_SOAK_MINUTES ?? 30);
const OBJECTS = Number(process.env.IDLE_SOAK_OBJECTS ?? 1000);
const R = 'kopftests.kopf-ts.dev';
const OPERATOR = 'test/long/soak-operator.ts';

test(
  `idle soak: ${OBJECTS} objects watched for ${MINUTES} minute(s), no memory growth`,
  { timeout: (MINUTES + 10) * 60_000 },
  async (t) => {
    const cluster = await sharedCluster();
    await installTestCrd(cluster);
    const ns = await testNamespace(t, cluster);
    const objects = Array.from(
      { length: OBJECTS },
      (_, i) => `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: idle-${i}}\nspec: {n: 0}\n`,
    );
    await kubectl(cluster, ['create', '-n', ns, '-f', '-'], objects.join('---\n'));
    const cli = startCli(t, cluster, ['run', OPERATOR, '-n', ns, '--standalone']);
    const pid = Number((await cli.waitFor(/PID \d+/)).match(/PID (\d+)/)![1]);
    const created = () => cli.output.filter((l) => l.includes("Handler 'create_fn' succeeded.")).length;
    await eventually(`all ${OBJECTS} handled`, () => created() === OBJECTS, 300_000, 500);

    const samples: number[] = [];
    for (let minute = 1; minute <= MINUTES; minute++) {
      await new Promise((r) => setTimeout(r, 60_000));
      samples.push(rssMb(pid));
      const line = `minute ${minute}: RSS ${samples.at(-1)!.toFixed(1)} MB`;
      t.diagnostic(line);
      process.stderr.write(`[idle soak] ${line}\n`); // progress while it runs
    }
    // Idle means idle: reconnections and relists handled nothing again.
    assert.equal(created(), OBJECTS);
    assert.equal(cli.output.filter((l) => l.includes("Handler 'update_fn'")).length, 0);
    assertNoGrowth(samples, 1.05, 3);

    // The objects carry the operator's finalizer (it has a deletion handler): delete them while it runs.
    await kubectl(cluster, ['delete', R, '--all', '-n', ns, '--wait=false']);
    await eventually(
      'all deleted',
      async () => (await kubectlJson<{ items: unknown[] }>(cluster, ['get', R, '-n', ns])).items.length === 0,
      300_000,
      1000,
    );
    cli.kill('SIGINT');
    assert.equal(await cli.exited, 0);
  },
);
