/**
 * Running a kopf-ts operator in-process against the test cluster, with its logs captured, and
 * the test custom resource `kopftests.kopf-ts.dev`.
 */
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { ClusterInfo } from '../../cluster/cluster.ts';
import type { KubeClient } from '../../packages/framework/src/kube/client.ts';
import { kubeconfigConnection, staticCredentials } from '../../packages/framework/src/kube/credentials.ts';
import { resourcePath } from '../../packages/framework/src/kube/resources.ts';
import { Operator, type OperatorOptions } from '../../packages/framework/src/runtime/operator.ts';
import type { JsonObject } from '../../packages/framework/src/util/json.ts';
import { createLogger, type Logger } from '../../packages/framework/src/util/logging.ts';
import { eventually, kubectl, kubectlApply } from './cluster.ts';

/** A namespaced CRD with a status subresource and free-form spec/status. */
export function freeformCrd(group: string, kind: string, plural: string, shortNames: string[] = []): string {
  return `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${plural}.${group}
spec:
  group: ${group}
  names: {kind: ${kind}, plural: ${plural}, singular: ${kind.toLowerCase()}, shortNames: [${shortNames.join(', ')}]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`;
}

/** The test resource, `kopftests.kopf-ts.dev` (`KopfTest`, `kt`). */
export const TEST_CRD = freeformCrd('kopf-ts.dev', 'KopfTest', 'kopftests', ['kt']);

export async function installTestCrd(cluster: ClusterInfo): Promise<void> {
  await kubectlApply(cluster, TEST_CRD);
  await eventually(
    'the test CRD is established',
    async () =>
      (await kubectl(cluster, [
        'get',
        'crd',
        'kopftests.kopf-ts.dev',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ])) === 'True',
  );
}

export interface RunningOperator {
  operator: Operator;
  logs: string[];
  stop(): Promise<void>;
}

/** A debug-level logger whose lines are kept (and echoed with KOPF_TS_TEST_LOGS=1). */
export function captureLogs(): { logs: string[]; logger: Logger } {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (process.env.KOPF_TS_TEST_LOGS) process.stderr.write(chunk);
      callback();
    },
  });
  return { logs, logger: createLogger({ destination, level: 'debug' }) };
}

/**
 * Starts an operator on `namespace` with the admin credentials; stopped after the test.
 * `prepare` is called before the start, e.g. to subscribe to events emitted during it.
 */
export async function startOperator(
  t: TestContext,
  cluster: ClusterInfo,
  namespace: string,
  options: OperatorOptions = {},
  prepare?: (operator: Operator) => void,
): Promise<RunningOperator> {
  const { logs, logger } = captureLogs();
  const credentials = staticCredentials(await kubeconfigConnection({ kubeconfig: cluster.kubeconfig }));
  const operator = new Operator({
    namespaces: [namespace],
    credentials,
    logger,
    ...options,
  });
  prepare?.(operator);
  await operator.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await operator.stop();
  };
  t.after(stop);
  return { operator, logs, stop };
}

/** Writes to the test resource `kopftests.kopf-ts.dev` in one namespace, through a kopf-ts client. */
export function testObjects(client: KubeClient, namespace: string) {
  const resource = { group: 'kopf-ts.dev', version: 'v1', plural: 'kopftests', namespaced: true };
  const target = (verb: string, name?: string) => ({ verb, resource: 'kopftests', namespace, name });
  return {
    create: async (name: string, spec: JsonObject): Promise<void> => {
      await client.request({
        method: 'POST',
        path: resourcePath(resource, { namespace }),
        body: { apiVersion: 'kopf-ts.dev/v1', kind: 'KopfTest', metadata: { name }, spec },
        target: target('create', name),
      });
    },
    /** Sets these keys of the spec (a merge patch). */
    patch: async (name: string, spec: JsonObject): Promise<void> => {
      await client.request({
        method: 'PATCH',
        path: resourcePath(resource, { namespace, name }),
        body: { spec },
        contentType: 'application/merge-patch+json',
        target: target('patch', name),
      });
    },
    delete: async (name: string): Promise<void> => {
      await client.request({
        method: 'DELETE',
        path: resourcePath(resource, { namespace, name }),
        target: target('delete', name),
      });
    },
    list: async (): Promise<JsonObject[]> => {
      const list = await client.request<JsonObject>({
        method: 'GET',
        path: resourcePath(resource, { namespace }),
        target: target('list'),
      });
      return (list.items ?? []) as JsonObject[];
    },
  };
}
