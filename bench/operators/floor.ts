/**
 * The floor of `npm run bench`: a minimal hand-written controller on @kubernetes/client-node
 * that keeps the same state as the kopf-ts and Kopf operators (the handler's result in
 * `status.<handler>`, Kopf's diff-base annotation) with the fewest requests: one LIST and one
 * WATCH (client-node's informer), then per handled change one PATCH of the status subresource
 * and one PATCH of the annotation. No finalizer (there are no deletion handlers), no progress
 * records, no retries beyond a fixed 1 s, no Events, no logs. Per object, changes are handled
 * one at a time and the newest state wins; an in-memory record of the last handled essence
 * skips the events of its own patches.
 *
 *     KUBECONFIG=... BENCH_NAMESPACE=bench node bench/operators/floor.ts
 *
 * Runs with Node's type stripping (no tsx): only erasable TypeScript syntax here.
 */
import {
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';

const GROUP = 'bench.kopf-ts.dev';
const VERSION = 'v1';
const PLURAL = 'benches';
const DIFF_BASE = 'kopf.zalando.org/last-handled-configuration';
const namespace = process.env.BENCH_NAMESPACE ?? 'default';

interface Bench extends KubernetesObject {
  spec?: { n?: number } & Record<string, unknown>;
}

const kc = new KubeConfig();
kc.loadFromDefault();
const api = kc.makeApiClient(CustomObjectsApi);
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** uid → the essence handled last (our own patches' events still carry the older annotation). */
const handled = new Map<string, string>();
/** uid → the newest state that arrived while a cycle of that object ran. */
const waiting = new Map<string, Bench>();
const running = new Set<string>();

/** Kopf's diff-base of these objects: no labels or annotations of their own, so the spec only. */
function essence(obj: Bench): string {
  return `${JSON.stringify({ spec: obj.spec ?? {} })}\n`;
}

function onEvent(obj: Bench): void {
  const uid = obj.metadata?.uid;
  if (!uid) return;
  if (running.has(uid)) waiting.set(uid, obj);
  else void cycle(uid, obj);
}

async function cycle(uid: string, obj: Bench): Promise<void> {
  running.add(uid);
  try {
    const want = essence(obj);
    const stored = obj.metadata?.annotations?.[DIFF_BASE];
    if (stored !== want && handled.get(uid) !== want) {
      const handler = stored === undefined && !handled.has(uid) ? 'create_fn' : 'update_fn';
      const name = obj.metadata!.name!;
      process.stdout.write(`CALL ${handler} ${name} ${obj.spec?.n}\n`);
      const result = { n: obj.spec?.n };
      const target = { group: GROUP, version: VERSION, namespace, plural: PLURAL, name };
      await api.patchNamespacedCustomObjectStatus(
        { ...target, body: { status: { [handler]: result } } },
        merge,
      );
      await api.patchNamespacedCustomObject(
        { ...target, body: { metadata: { annotations: { [DIFF_BASE]: want } } } },
        merge,
      );
      handled.set(uid, want);
    }
  } catch (error) {
    process.stderr.write(`floor: ${obj.metadata?.name}: ${(error as Error).message}; retrying in 1s\n`);
    setTimeout(() => onEvent(waiting.get(uid) ?? obj), 1000);
  } finally {
    running.delete(uid);
    const next = waiting.get(uid);
    waiting.delete(uid);
    if (next) void cycle(uid, next);
  }
}

const informer = makeInformer<Bench>(
  kc,
  `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
  () =>
    api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL }) as Promise<
      KubernetesListObject<Bench>
    >,
);
informer.on('add', onEvent);
informer.on('update', onEvent);
informer.on('delete', (obj) => {
  if (obj.metadata?.uid) handled.delete(obj.metadata.uid);
});
informer.on('error', (error: unknown) => {
  process.stderr.write(`floor: watch failed (${String(error)}); restarting in 1s\n`);
  setTimeout(() => void informer.start(), 1000);
});
await informer.start();
process.stderr.write(`floor: watching ${PLURAL}.${GROUP} in ${namespace}\n`);
const stop = () => {
  void informer.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
