/**
 * The `kopf-ts` command line: `run` an operator from its files with live logs, `generate` its
 * manifests. Built on commander; nothing else imports this layer.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { builtinLogin, Vault } from '../activities/login.ts';
import { KubeClient } from '../kube/client.ts';
import type { WebhookOptions } from '../admission/serve.ts';
import { generateManifests } from '../manifests/generate.ts';
import { commentOf, DEFAULT_WEBHOOK_PORT } from '../manifests/webhooks.ts';
import { detectIdentity, Peering } from '../peering/peering.ts';
import { registry } from '../registry/registry.ts';
import { Operator, type OperatorOptions } from '../runtime/operator.ts';
import { createLogger, type LogFormat, type LogLevel } from '../util/logging.ts';
import { LoadError, loadOperatorFiles, typecheck } from './load.ts';

const own = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('Not an integer.');
  return n;
}

interface RunOptions {
  namespace?: string[];
  allNamespaces?: boolean;
  standalone?: boolean;
  peering?: string;
  priority?: number;
  peeringLifetime?: number;
  liveness?: string;
  metrics?: string;
  events: NonNullable<OperatorOptions['events']>;
  verbose?: boolean;
  debug?: boolean;
  quiet?: boolean;
  logFormat: LogFormat;
  typecheck?: boolean;
  kubeconfig?: string;
  context?: string;
  webhookServer?: { host: string; port: number };
  webhookUrl?: string;
  webhookAutoconfigure?: string | boolean;
  webhookCert?: string;
  webhookKey?: string;
}

async function run(files: string[], options: RunOptions): Promise<number> {
  const level: LogLevel = options.debug || options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const logger = createLogger({ format: options.logFormat, level });
  let webhooks: WebhookOptions | undefined;
  try {
    webhooks = webhookOptions(files, options);
  } catch (error) {
    logger.error((error as Error).message);
    return 2;
  }
  if (options.typecheck) {
    const problems = await typecheck(files);
    if (problems.length) {
      for (const p of problems) process.stderr.write(`${p}\n`);
      logger.error(`Type-checking found ${problems.length} problem(s); not starting.`);
      return 1;
    }
  }
  await loadOperatorFiles(files);
  logger.info(`Starting kopf-ts ${own.version}.`);
  const operator = new Operator({
    logger,
    namespaces: options.namespace,
    clusterwide: options.allNamespaces,
    login: { kubeconfig: options.kubeconfig, context: options.context },
    liveness: options.liveness,
    webhooks,
    metrics: options.metrics,
    events: options.events,
    peering: options.standalone
      ? false
      : {
          name: options.peering ?? 'default',
          mandatory: options.peering !== undefined,
          priority: options.priority ?? 0,
          lifetime: options.peeringLifetime,
        },
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn(`${signal} again: exiting at once.`);
      process.exit(130);
    }
    logger.info(`${signal} received: stopping (press Ctrl-C again to exit at once).`);
    void operator.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stopped = new Promise<Error | undefined>((r) => operator.once('stopped', r));
  try {
    await operator.start();
  } catch (error) {
    logger.error(`The operator could not start: ${(error as Error).message}`);
    await operator.stop();
    return 1;
  }
  const failure = await stopped;
  return failure ? 1 : 0;
}

interface GenerateCliOptions {
  namespace: string;
  allNamespaces?: boolean;
  image: string;
  name?: string;
  appDir: string;
  webhookCa?: string;
  webhookPort: number;
}

async function generate(files: string[], options: GenerateCliOptions): Promise<number> {
  await loadOperatorFiles(files);
  const name = options.name ?? defaultName(files[0]!);
  const docs = generateManifests(registry(), {
    name,
    namespace: options.namespace,
    clusterwide: options.allNamespaces ?? false,
    image: options.image,
    files: files.map((f) => `${options.appDir.replace(/\/$/, '')}/${basename(f)}`),
    webhookPort: options.webhookPort,
    webhookCa: options.webhookCa === undefined ? undefined : readFileSync(options.webhookCa, 'utf8'),
  });
  process.stdout.write(
    docs
      .map((d) => {
        const text = stringify(d, { lineWidth: 0, aliasDuplicateObjects: false });
        const comment = commentOf(d);
        return comment ? `${comment.replace(/^/gm, '# ')}\n${text}` : text;
      })
      .join('---\n'),
  );
  return 0;
}

/** `HOST:PORT` (IPv6 in brackets: `[::]:8443`). */
function hostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new InvalidArgumentError('Expected HOST:PORT, e.g. 127.0.0.1:9443.');
  return { host: match[1] ?? match[2] ?? '', port };
}

/** The webhook server's options from the `--webhook-*` flags; undefined without `--webhook-server`. */
function webhookOptions(files: string[], options: RunOptions): WebhookOptions | undefined {
  const { webhookServer, webhookUrl, webhookAutoconfigure, webhookCert, webhookKey } = options;
  if (!webhookServer) {
    const stray = [
      webhookUrl && '--webhook-url',
      webhookAutoconfigure && '--webhook-autoconfigure',
      webhookCert && '--webhook-cert',
      webhookKey && '--webhook-key',
    ].filter(Boolean);
    if (stray.length) throw new Error(`${stray.join(', ')}: needs --webhook-server HOST:PORT.`);
    return undefined;
  }
  if (Boolean(webhookCert) !== Boolean(webhookKey))
    throw new Error('--webhook-cert and --webhook-key go together.');
  if (webhookUrl && !/^https:\/\//.test(webhookUrl))
    throw new Error(`--webhook-url must be an https:// URL, got '${webhookUrl}'.`);
  return {
    ...webhookServer,
    url: webhookUrl,
    tls: webhookCert && webhookKey ? { certFile: webhookCert, keyFile: webhookKey } : undefined,
    autoconfigure:
      typeof webhookAutoconfigure === 'string'
        ? webhookAutoconfigure
        : webhookAutoconfigure
          ? `${defaultName(files[0]!)}.auto.kopf-ts.dev`
          : undefined,
  };
}

/** The operator's name from its package (or its folder): `psql-operator`. */
function defaultName(file: string): string {
  let dir = dirname(resolve(file));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(resolve(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name) return pkg.name.replace(/^@[^/]+\//, '');
    } catch {
      // no package.json here
    }
    const parent = dirname(dir);
    if (parent === dir) return basename(dirname(resolve(file))) || 'kopf-operator';
    dir = parent;
  }
}

interface PeeringCommandOptions {
  namespace?: string[];
  allNamespaces?: boolean;
  peering: string;
  id?: string;
  priority?: number;
  lifetime?: number;
  message?: string;
  kubeconfig?: string;
  context?: string;
}

/** `freeze` and `resume`: write (or remove) a record in the peering for a manual identity. */
async function touchPeering(options: PeeringCommandOptions, lifetime: number): Promise<number> {
  const logger = createLogger();
  const vault = new Vault(
    [builtinLogin({ kubeconfig: options.kubeconfig, context: options.context })],
    logger,
    {},
  );
  await vault.login(true);
  const client = new KubeClient(vault);
  const identity = options.id ?? detectIdentity(true);
  const scopes: Array<string | undefined> =
    options.allNamespaces || !options.namespace?.length ? [undefined] : options.namespace;
  try {
    for (const namespace of scopes) {
      const peering = new Peering(
        client,
        {
          name: options.peering,
          mandatory: true,
          priority: options.priority ?? 100,
          lifetime,
          identity,
          namespace,
        },
        logger,
      );
      await peering.touch(lifetime);
      const where = `peering '${options.peering}' ${namespace ? `in '${namespace}'` : 'cluster-wide'}`;
      if (lifetime > 0)
        logger.info(
          `Frozen: ${identity} (priority ${options.priority ?? 100}) in ${where} for ${lifetime}s${options.message ? `: ${options.message}` : ''}.`,
        );
      else logger.info(`Resumed: ${identity} removed from ${where}.`);
    }
  } finally {
    await client.close();
  }
  return 0;
}

export function program(): Command {
  const cli = new Command('kopf-ts')
    .description('Kubernetes operators in TypeScript, in the style of Kopf.')
    .version(own.version);
  cli
    .command('run')
    .description('Run an operator from its files, with live logs (Ctrl-C stops it gracefully).')
    .argument('<files...>', 'operator files (.ts or .js), loaded in order')
    .option('-n, --namespace <ns>', 'serve this namespace (repeatable; globs like team-*)', collect)
    .option('-A, --all-namespaces', 'serve all namespaces (cluster-wide)')
    .option('--standalone', 'do not coordinate with other operator instances (peering)')
    .option('--peering <name>', 'the peering object to coordinate through')
    .option('--priority <n>', 'priority among peers (default 0)', integer)
    .option(
      '--peering-lifetime <seconds>',
      'how long our peering record stays valid without keep-alives (default 60)',
      integer,
    )
    .option('--liveness <url>', 'serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz')
    .option('--metrics <addr>', 'serve Prometheus metrics, e.g. 0.0.0.0:9090')
    .addOption(
      new Option('--events <which>', 'Kubernetes Events to post about handling: failures only, all, or none')
        .choices(['warnings', 'all', 'none'])
        .default('warnings'),
    )
    .option('-v, --verbose', 'log more (debug level)')
    .option('--debug', 'log everything')
    .option('-q, --quiet', 'log warnings and errors only')
    .addOption(new Option('--log-format <format>', 'log format').choices(['plain', 'json']).default('plain'))
    .option('--typecheck', 'type-check the operator files before starting (needs typescript)')
    .option('--kubeconfig <path>', 'the kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'the kubeconfig context')
    .option(
      '--webhook-server <host:port>',
      'serve the admission webhooks (on.validate, on.mutate) over HTTPS, e.g. 127.0.0.1:9443',
      hostPort,
    )
    .option('--webhook-url <url>', 'the URL the apiserver calls (default: https://HOST:PORT)')
    .option(
      '--webhook-autoconfigure [name]',
      'apply the Validating/MutatingWebhookConfiguration at start (default name: <operator>.auto.kopf-ts.dev)',
    )
    .option(
      '--webhook-cert <file>',
      "the serving certificate's PEM file (default: a self-signed one, made at start)",
    )
    .option('--webhook-key <file>', "the serving certificate's key (PEM)")
    .action(async (files: string[], options: RunOptions) => {
      // Exit once stopped: handlers abandoned at the stop timeout must not keep the process alive.
      process.exit(await run(files, options));
    });
  cli
    .command('generate')
    .description(
      "Print the operator's manifests as YAML: CRDs, peering CRDs, ServiceAccount, RBAC, Deployment (and admission webhooks).",
    )
    .argument('<files...>', 'operator files')
    .option('-n, --namespace <ns>', 'namespace of the operator (and the one it serves, unless -A)', 'default')
    .option('-A, --all-namespaces', 'the operator serves all namespaces (ClusterRole)')
    .option('--image <image>', 'the operator image', 'kopf-ts-operator:latest')
    .option('--name <name>', "the operator's name (default: its package name)")
    .option('--app-dir <dir>', 'where the image keeps the operator files', '/app')
    .option('--webhook-ca <file>', "the CA (PEM) that signs the webhook server's certificate: the caBundle")
    .option('--webhook-port <port>', "the webhook server's container port", integer, DEFAULT_WEBHOOK_PORT)
    .action(async (files: string[], options: GenerateCliOptions) => {
      process.exitCode = await generate(files, options);
    });
  const peeringCommand = (name: string, description: string) =>
    cli
      .command(name)
      .description(description)
      .option('-n, --namespace <ns>', 'the namespace(s) of the peering (KopfPeering); repeatable', collect)
      .option(
        '-A, --all-namespaces',
        'the cluster-wide peering (ClusterKopfPeering); the default without --namespace',
      )
      .option('-P, --peering <name>', 'the peering object', 'default')
      .option('-i, --id <identity>', 'the identity to write (default: user@host)')
      .option('--kubeconfig <path>', 'the kubeconfig file')
      .option('--context <name>', 'the kubeconfig context');
  peeringCommand('freeze', 'Pause the operators of a peering: write a higher-priority record for a while.')
    .requiredOption('-t, --lifetime <seconds>', 'how long to pause them', integer)
    .option('-p, --priority <n>', 'the priority of the pause (default 100)', integer)
    .option('-m, --message <text>', 'why (logged)')
    .action(async (options: PeeringCommandOptions) => {
      process.exitCode = await touchPeering(options, options.lifetime!);
    });
  peeringCommand(
    'resume',
    'Resume the operators of a peering: remove the record that `freeze` wrote.',
  ).action(async (options: PeeringCommandOptions) => {
    process.exitCode = await touchPeering(options, 0);
  });
  return cli;
}

/** Runs the CLI; load errors are printed without a stack dump. */
export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (error) {
    // Load errors, missing credentials, API errors: a message, not a stack dump (--debug shows it).
    process.stderr.write(`kopf-ts: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!(error instanceof LoadError) && argv.includes('--debug') && error instanceof Error)
      process.stderr.write(`${error.stack}\n`);
    process.exitCode = 1;
  }
}
