/**
 * The demo (`npm run demo`): on the local control plane, install the psql CRD generated from
 * the operator, run the psql operator in the foreground with live logs, apply
 * examples/psql-cr.yaml, and show the 4 pods and 4 Bound PVCs. In a terminal the operator
 * keeps running until Ctrl-C; without one (CI, scripts) the demo exits once it is shown.
 */
import { execFileSync, spawn } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { up } from '../cluster/cluster.ts';

const OPERATOR = 'packages/psql-operator/src/operator.ts';
// Run the CLI with this Node directly (not through a shell shim, which would not pass signals on).
const KOPF_TS = [process.execPath, 'packages/framework/bin/kopf-ts.js'] as const;
const NAMESPACE = 'default';

function log(message: string): void {
  process.stderr.write(`\n[demo] ${message}\n`);
}

async function main(): Promise<number> {
  const cluster = await up();
  const env = { ...process.env, KUBECONFIG: cluster.kubeconfig };
  const kubectl = (args: string[], input?: string) =>
    execFileSync(`${cluster.binDir}/kubectl`, args, {
      env,
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'inherit'],
    });

  log(`kopf-ts generate ${OPERATOR} | kubectl apply (the CRD)`);
  const generated = execFileSync(KOPF_TS[0], [KOPF_TS[1], 'generate', OPERATOR], { env, encoding: 'utf8' });
  const crds = parseAllDocuments(generated)
    .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
    .filter((d) => d.kind === 'CustomResourceDefinition' && d.metadata.name === 'psqls.test.com');
  process.stderr.write(
    kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: crds })),
  );
  kubectl(['wait', '--for=condition=Established', 'crd/psqls.test.com', '--timeout=30s']);

  log(`kopf-ts run ${OPERATOR} --namespace ${NAMESPACE}`);
  const operator = spawn(KOPF_TS[0], [KOPF_TS[1], 'run', OPERATOR, '--namespace', NAMESPACE], {
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let watching = false;
  operator.stderr.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    if (chunk.toString().includes('Starting the watch-stream for psqls')) watching = true;
  });
  const exited = new Promise<number>((resolve) => operator.on('exit', (code) => resolve(code ?? 1)));
  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
    operator.kill('SIGINT');
  });
  for (let i = 0; !watching; i++) {
    if (operator.exitCode !== null || i > 600) {
      log('the operator did not start; see its log above.');
      return 1;
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  log('kubectl apply -f examples/psql-cr.yaml');
  process.stderr.write(kubectl(['apply', '-f', 'examples/psql-cr.yaml']));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const pods = kubectl([
      'get',
      'pods',
      '-n',
      NAMESPACE,
      '-l',
      'app=psql-pod',
      '-o',
      'jsonpath={range .items[*]}{.status.phase}{"\\n"}{end}',
    ]);
    const pvcs = kubectl([
      'get',
      'pvc',
      '-n',
      NAMESPACE,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\\n"}{end}',
    ]);
    const running = pods.split('\n').filter((p) => p === 'Running').length;
    const bound = pvcs.split('\n').filter((l) => /^www-psql-pod-\d+ Bound$/.test(l)).length;
    if (running >= 4 && bound >= 4) break;
    if (Date.now() > deadline || interrupted || operator.exitCode !== null) {
      log(`not there in time: ${running} pods Running, ${bound} PVCs Bound.`);
      operator.kill('SIGINT');
      await exited;
      return 1;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  log('kubectl get pods');
  process.stderr.write(kubectl(['get', 'pods', '-n', NAMESPACE]));
  log('kubectl get pvc');
  process.stderr.write(kubectl(['get', 'pvc', '-n', NAMESPACE]));
  log('kubectl get psql');
  process.stderr.write(kubectl(['get', 'psql', '-n', NAMESPACE]));
  log(
    `done: 4 pods Running, 4 PVCs Bound. Try: ${cluster.binDir}/kubectl --kubeconfig ${cluster.kubeconfig} get pods`,
  );
  if (process.stdin.isTTY && !process.env.CI) {
    log('The operator keeps running: change examples/psql-cr.yaml and apply it again. Ctrl-C stops it.');
    return (await exited) === 0 || interrupted ? 0 : 1;
  }
  operator.kill('SIGINT');
  const code = await exited;
  log(
    `the operator stopped (exit code ${code}); the control plane keeps running (npm run cluster:down stops it).`,
  );
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`[demo] ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
