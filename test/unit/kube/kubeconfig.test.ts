/**
 * kopf-ts's own kubeconfig reader: kubectl's merge rules, paths relative to their file, inline
 * data, tokens, exec plugins, clear errors, the fall-back to client-node for what it leaves
 * out, and the same result as client-node's `KubeConfig` on the same files.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kubeconfigConnection } from '../../../packages/framework/src/kube/credentials.ts';
import { readKubeconfig, Unsupported } from '../../../packages/framework/src/kube/kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'kopf-ts-kubeconfig-'));
const b64 = (s: string) => Buffer.from(s).toString('base64');
function file(name: string, content: string, mode?: number): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content, { mode });
  return path;
}

test('the current context: server, CA and client certificate from files relative to the kubeconfig', async () => {
  file('a/certs/ca.crt', 'CA-PEM');
  file('a/certs/client.crt', 'CERT-PEM');
  file('a/certs/client.key', 'KEY-PEM');
  const kubeconfig = file(
    'a/config',
    `apiVersion: v1
kind: Config
current-context: dev
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', certificate-authority: certs/ca.crt}}]
users: [{name: u, user: {client-certificate: certs/client.crt, client-key: certs/client.key}}]
contexts: [{name: dev, context: {cluster: c, user: u, namespace: team-a}}]
`,
  );
  const info = await readKubeconfig([kubeconfig]);
  assert.equal(info.server, 'https://127.0.0.1:6443');
  assert.equal(String(info.ca), 'CA-PEM');
  assert.equal(String(info.certificate), 'CERT-PEM');
  assert.equal(String(info.privateKey), 'KEY-PEM');
  assert.equal(info.defaultNamespace, 'team-a');
  assert.equal(info.source, "kubeconfig context 'dev'");
});

test('several files: the first to set a name or the current context wins; inline data and tokens', async () => {
  const first = file(
    'm/one',
    `current-context: one
clusters: [{name: c, cluster: {server: 'https://first', certificate-authority-data: ${b64('CA1')}}}]
users: [{name: u, user: {token: tok-1}}]
contexts: [{name: one, context: {cluster: c, user: u}}]
`,
  );
  const second = file(
    'm/two',
    `current-context: two
clusters: [{name: c, cluster: {server: 'https://second'}}, {name: d, cluster: {server: 'https://d', insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: tok-2}}, {name: w, user: {tokenFile: token.txt}}, {name: p, user: {username: ann, password: 'se:cret'}}]
contexts: [{name: two, context: {cluster: d, user: w}}, {name: basic, context: {cluster: c, user: p}}]
`,
  );
  const merged = await readKubeconfig([join(dir, 'missing'), first, second]);
  assert.equal(merged.server, 'https://first');
  assert.equal(String(merged.ca), 'CA1');
  assert.equal(merged.token, 'tok-1');
  const other = await readKubeconfig([first, second], 'two');
  assert.equal(other.server, 'https://d');
  assert.equal(other.insecure, true);
  assert.equal(other.tokenFile, join(dir, 'm/token.txt'), 'relative to the file that names it');
  const basic = await readKubeconfig([first, second], 'basic');
  assert.deepEqual([basic.server, basic.username, basic.password], ['https://first', 'ann', 'se:cret']);
});

test('an exec credential plugin is run with its args, env and KUBERNETES_EXEC_INFO', async () => {
  file(
    'e/plugin.sh',
    `#!/bin/sh
case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) ;; *) exit 3 ;; esac
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"'"$PREFIX-$1"'","expirationTimestamp":"2030-01-01T00:00:00Z"}}'
`,
    0o755,
  );
  file('e/failing.sh', '#!/bin/sh\necho "no such account" >&2\nexit 1\n', 0o755);
  const kubeconfig = file(
    'e/config',
    `current-context: x
clusters: [{name: c, cluster: {server: 'https://e'}}]
users:
- {name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ./plugin.sh, args: [arg], env: [{name: PREFIX, value: pre}]}}}
- {name: f, user: {exec: {command: ./failing.sh}}}
contexts: [{name: x, context: {cluster: c, user: u}}, {name: f, context: {cluster: c, user: f}}]
`,
  );
  const info = await readKubeconfig([kubeconfig]);
  assert.equal(info.token, 'pre-arg');
  assert.equal(info.expiration?.toISOString(), '2030-01-01T00:00:00.000Z');
  await assert.rejects(
    readKubeconfig([kubeconfig], 'f'),
    /exec credential plugin '.\/failing.sh' failed.*no such account/,
  );
});

test('clear errors for broken kubeconfigs; auth providers are left to client-node', async () => {
  const broken = file('b/broken', 'clusters: [unclosed');
  await assert.rejects(readKubeconfig([broken]), /The kubeconfig .*broken is not valid YAML/);
  const partial = file(
    'b/partial',
    `current-context: gone
clusters: [{name: c, cluster: {server: 'https://x'}}]
users: [{name: g, user: {auth-provider: {name: oidc, config: {}}}}]
contexts: [{name: ok, context: {cluster: c, user: g}}, {name: nocluster, context: {cluster: zz}}]
`,
  );
  await assert.rejects(readKubeconfig([partial]), /has no context 'gone'; it has: ok, nocluster/);
  await assert.rejects(readKubeconfig([partial], 'nocluster'), /names no known cluster \('zz'\)/);
  await assert.rejects(readKubeconfig([partial], 'ok'), Unsupported);
  await assert.rejects(
    kubeconfigConnection({ kubeconfig: join(dir, 'nowhere') }),
    /The kubeconfig .*nowhere does not exist/,
  );
});

test('the same connection as client-node reads from the same kubeconfig', async () => {
  const kubeconfig = file(
    'p/config',
    `apiVersion: v1
kind: Config
current-context: p
clusters: [{name: c, cluster: {server: 'https://10.0.0.1:443', certificate-authority-data: ${b64('CA')}}}]
users: [{name: u, user: {client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')}}}, {name: t, user: {token: abc}}]
contexts: [{name: p, context: {cluster: c, user: u, namespace: ns1}}, {name: t, context: {cluster: c, user: t}}]
`,
  );
  const { KubeConfig } = await import('@kubernetes/client-node');
  for (const context of ['p', 't']) {
    const ours = await readKubeconfig([kubeconfig], context);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    kc.setCurrentContext(context);
    const opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; headers?: Record<string, string> } = {};
    await kc.applyToHTTPSOptions(opts);
    assert.equal(ours.server, kc.getCurrentCluster()?.server);
    assert.equal(String(ours.ca), String(opts.ca));
    assert.equal(ours.certificate && String(ours.certificate), opts.cert && String(opts.cert));
    assert.equal(ours.privateKey && String(ours.privateKey), opts.key && String(opts.key));
    assert.equal(ours.token && `Bearer ${ours.token}`, opts.headers?.Authorization);
    assert.equal(ours.defaultNamespace, kc.getContextObject(context)?.namespace);
  }
});
