/**
 * `npm run cluster:up|down|status|reset [-- --name NAME]`: the local control plane's commands.
 */
import { parseArgs } from 'node:util';
import { down, reset, status, up } from './cluster.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { name: { type: 'string', default: 'default' }, help: { type: 'boolean', short: 'h' } },
});
const command = positionals[0];
const name = values.name;

async function main(): Promise<number> {
  switch (values.help ? 'help' : command) {
    case 'up': {
      const info = await up({ name });
      console.log(`Control plane '${name}' is up at ${info.server}.`);
      console.log(`Kubeconfig: ${info.kubeconfig}`);
      console.log(`Use it:     ${info.binDir}/kubectl --kubeconfig ${info.kubeconfig} get nodes`);
      return 0;
    }
    case 'down':
      await down(name);
      return 0;
    case 'reset':
      await reset(name);
      return 0;
    case 'status': {
      const s = await status(name);
      if (!s) {
        console.log(`instance '${name}': not created`);
        return 1;
      }
      for (const [component, running] of Object.entries(s.running)) {
        console.log(
          `${component.padEnd(24)} ${running ? `running (pid ${s.info.pids[component as keyof typeof s.info.pids]})` : 'stopped'}`,
        );
      }
      console.log(`apiserver ${s.info.server}: ${s.ready ? 'ready' : 'not ready'}`);
      console.log(`kubeconfig: ${s.info.kubeconfig}`);
      return s.ready ? 0 : 1;
    }
    default:
      console.log('usage: cluster/cli.ts up|down|status|reset [--name NAME]');
      return command ? 2 : 0;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[cluster] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
