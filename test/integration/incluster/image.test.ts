/**
 * The operator image built offline by scripts/image.sh (an OCI image layout), verified by
 * running it: its layers are unpacked into a root filesystem (with umoci when installed, else
 * by untarring the layers the manifest lists), and its entrypoint runs from that root with
 * `chroot` as the image's user 10001, with the generated Deployment's args and a pod's
 * environment (the image's Env, the service host and port, the ServiceAccount files at
 * /var/run/secrets/kubernetes.io/serviceaccount inside the root). Nothing in the root is
 * writable by that user, as with readOnlyRootFilesystem. The operator must start, log in
 * with the ServiceAccount and handle a psql.
 *
 * Without root (chroot needs CAP_SYS_CHROOT), the entrypoint runs through the image's own
 * dynamic loader with the unpacked paths instead: the same binaries and libraries, but the
 * host's filesystem around them.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { kubectl } from '../../support/cluster.ts';
import { ROOT, startCli } from '../../support/cli.ts';
import { installCrds, psqlManifest, readyPsql, serviceEnv, setup } from './support.ts';

const execFileAsync = promisify(execFile);
const REF = 'test';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']))
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  return undefined;
}

const missing = ['tar', 'gzip', 'sha256sum', 'ldd'].filter((c) => !which(c));
const skip =
  process.platform !== 'linux'
    ? 'the image holds a Linux Node binary'
    : missing.length
      ? `scripts/image.sh needs ${missing.join(', ')}`
      : false;

interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
}
interface Unpacked {
  rootfs: string;
  config: ImageConfig;
  how: string;
}

/** Unpacks the image's root filesystem: umoci when installed, else the manifest's layers with tar. */
async function unpack(layout: string, into: string): Promise<Unpacked> {
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === REF);
  assert.ok(entry, `index.json names the ref '${REF}'`);
  const manifest = JSON.parse(readFileSync(blob(entry.digest), 'utf8')) as {
    config: { digest: string };
    layers: Array<{ digest: string; mediaType: string }>;
  };
  const config = (JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { config: ImageConfig })
    .config;
  const umoci = which('umoci');
  if (umoci) {
    const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
    await execFileAsync(umoci, ['unpack', ...rootless, '--image', `${layout}:${REF}`, into]);
    return { rootfs: join(into, 'rootfs'), config, how: 'umoci unpack' };
  }
  const rootfs = join(into, 'rootfs');
  execFileSync('mkdir', ['-p', rootfs]);
  for (const layer of manifest.layers) {
    assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    await execFileAsync('tar', ['-xzf', blob(layer.digest), '-C', rootfs]);
  }
  return { rootfs, config, how: 'tar' };
}

before(installCrds);

test('the offline OCI image runs the operator in the cluster', { skip }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'kopf-ts-image-test-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const layout = join(work, 'image');

  // Build (what `bash scripts/image.sh` does, into a folder of this test).
  let started = Date.now();
  await execFileAsync('bash', [join(ROOT, 'scripts/image.sh'), '--out', layout, '--ref', REF], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  const blobs = readdirSync(join(layout, 'blobs', 'sha256'));
  const bytes = blobs.reduce((n, b) => n + readFileSync(join(layout, 'blobs', 'sha256', b)).length, 0);
  t.diagnostic(
    `built in ${Date.now() - started} ms: ${blobs.length} blobs, ${(bytes / 2 ** 20).toFixed(1)} MiB`,
  );

  started = Date.now();
  const { rootfs, config, how } = await unpack(layout, join(work, 'bundle'));
  t.diagnostic(`unpacked with ${how} in ${Date.now() - started} ms`);

  // What the image holds and how it starts.
  assert.deepEqual(config.Entrypoint, [
    '/usr/local/bin/node',
    '--max-semi-space-size=2',
    '/app/node_modules/kopf-ts/bin/kopf-ts.js',
  ]);
  assert.deepEqual(config.Cmd, ['run', '/app/operator.ts']);
  assert.equal(config.User, '10001:10001');
  assert.ok(existsSync(join(rootfs, 'app/operator.ts')));
  assert.ok(existsSync(join(rootfs, 'app/node_modules/kopf-ts/dist/cli/main.js')), 'kopf-ts, built');
  assert.ok(!existsSync(join(rootfs, 'app/node_modules/kopf-ts/src')), 'no framework sources');
  const packages = readdirSync(join(rootfs, 'app/node_modules/.pnpm'));
  assert.ok(
    packages.some((d) => d.startsWith('tsx@')),
    'tsx, to load operator.ts',
  );
  assert.ok(!packages.some((d) => d.startsWith('typescript@')), 'no TypeScript compiler');
  assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), /:10001:10001:/);

  // A namespace with the generated RBAC; the token where the kubelet mounts it.
  const s = await setup(t, { saDir: join(rootfs, SA_DIR) });
  const deployment = s.docs.find((d) => d.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
  };
  const args = deployment.spec.template.spec.containers[0]!.args;
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(
      (config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    ),
    HOSTNAME: 'psql-operator-0',
    POD_ID: 'psql-operator-0',
    ...serviceEnv(s.cluster),
  };
  const entrypoint = config.Entrypoint;
  const chroot = which('chroot');
  let command: string[];
  if (chroot && process.getuid?.() === 0) {
    // The image's user: nothing in the root filesystem (owned by root) is writable for it.
    command = [chroot, `--userspec=${config.User}`, rootfs, ...entrypoint];
  } else {
    // No chroot: the image's loader and libraries, its files by their unpacked paths.
    const inRoot = (p: string) => (p.startsWith('/') ? join(rootfs, p) : p);
    command = [
      join(rootfs, 'lib64/ld-linux-x86-64.so.2'),
      '--library-path',
      join(rootfs, 'lib/x86_64-linux-gnu'),
      ...entrypoint.map(inRoot),
    ];
    args.splice(0, args.length, ...args.map((a) => (a.startsWith('/app/') ? inRoot(a) : a)));
    env.KOPF_TS_SERVICEACCOUNT_DIR = join(rootfs, SA_DIR);
  }
  t.diagnostic(`running: ${[...command, ...args].join(' ')}`);
  started = Date.now();
  const cli = startCli(t, undefined, args, { command, env, replaceEnv: true });
  await cli.waitFor('Client is configured in cluster with service account.', 30_000);
  await cli.waitFor(`Starting the watch-stream for psqls.v1.test.com in '${s.ns}'`, 30_000);
  t.diagnostic(`started in ${Date.now() - started} ms`);

  await kubectl(s.cluster, ['apply', '-n', s.ns, '-f', '-'], psqlManifest('db', 2));
  await cli.waitFor(`Handler 'create_fn' succeeded.`, 30_000);
  await readyPsql(s, 'db', 2);
  assert.ok(!cli.output.some((l) => /EROFS|EACCES|"level":"error"/.test(l)), 'no write attempts, no errors');
  // JSON logs, as the generated Deployment asks for.
  assert.ok(cli.output.some((l) => l.startsWith('{') && l.includes('"msg":')));
});
