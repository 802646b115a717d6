/**
 * The soak (long tier, `npm run test:long`): a kopf-ts operator process under steady churn for
 * SOAK_MINUTES (default 30): objects created, updated and deleted in a loop. Every minute it
 * reports the operator's RSS and the creation-to-handled latency; at the end every change must
 * have been handled (the ledger), no finalizer left behind, and RSS must not have grown beyond
 * noise once warmed up (the last third against the second third of the samples).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, kubectl, kubectlJson, sharedCluster, testNamespace } from '../support/cluster.ts';
import { startCli } from '../support/cli.ts';
import { assertNoGrowth, rssMb } from '../support/memory.ts';
import { installTestCrd } from '../support/operator.ts';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const R = 'kopftests.kopf-ts.dev';
const OPERATOR = 'test/long/soak-operator.ts';

test(
  `soak: ${MINUTES} minute(s) of steady churn, nothing lost, no memory growth`,
  { timeout: (MINUTES + 5) * 60_000 },
  async (t) => {
    const cluster = await sharedCluster();
    await installTestCrd(cluster);
    const ns = await testNamespace(t, cluster);
    const cli = startCli(t, cluster, ['run', OPERATOR, '-n', ns, '--standalone']);
    await cli.waitFor('Starting the watch-stream for kopftests');
    const pid = Number((await cli.waitFor(/PID \d+/)).match(/PID (\d+)/)![1]);

    const end = Date.now() + MINUTES * 60_000;
    const samples: Array<{ minute: number; rss: number }> = [];
    const latencies: number[] = [];
    let created = 0;
    let updated = 0;
    let deleted = 0;
    let nextSample = Date.now() + 60_000;
    for (let i = 0; Date.now() < end; i++) {
      const name = `soak-${i}`;
      const t0 = Date.now();
      await kubectl(
        cluster,
        ['apply', '-n', ns, '-f', '-'],
        `apiVersion: kopf-ts.dev/v1\nkind: KopfTest\nmetadata: {name: ${name}}\nspec: {n: 0}\n`,
      );
      created++;
      await cli.waitFor(`[${ns}/${name}] Handler 'create_fn' succeeded.`, 60_000);
      latencies.push(Date.now() - t0);
      await kubectl(cluster, ['patch', R, name, '-n', ns, '--type=merge', '-p', '{"spec":{"n":1}}']);
      updated++;
      if (i >= 5) {
        await kubectl(cluster, ['delete', R, `soak-${i - 5}`, '-n', ns, '--wait=false']);
        deleted++;
      }
      if (Date.now() >= nextSample) {
        const p = [...latencies].sort((a, b) => a - b);
        samples.push({ minute: samples.length + 1, rss: rssMb(pid) });
        const line = `minute ${samples.length}: RSS ${samples.at(-1)!.rss.toFixed(1)} MB, ${created} created, p50 ${p[Math.floor(p.length / 2)]} ms, p99 ${p[Math.floor(p.length * 0.99)]} ms`;
        t.diagnostic(line);
        process.stderr.write(`[soak] ${line}\n`); // progress while it runs (diagnostics come at the end)
        latencies.length = 0;
        nextSample += 60_000;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // The ledger: every creation and update handled once, deletions complete, no finalizers left.
    await eventually(
      'all updates handled',
      () => cli.output.filter((l) => l.includes("Handler 'update_fn' succeeded.")).length === updated,
      60_000,
    );
    assert.equal(cli.output.filter((l) => l.includes("Handler 'create_fn' succeeded.")).length, created);
    await eventually(
      'deleted objects are gone',
      async () =>
        (await kubectlJson<{ items: unknown[] }>(cluster, ['get', R, '-n', ns])).items.length ===
        created - deleted,
      60_000,
    );
    assert.equal(cli.output.filter((l) => l.includes("Handler 'delete_fn' succeeded.")).length, deleted);
    assertNoGrowth(
      samples.map((s) => s.rss),
      1.15,
      5,
    );
    cli.kill('SIGINT');
    assert.equal(await cli.exited, 0);
  },
);
