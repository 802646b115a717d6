/**
 * A kopf-ts API client for tests, logged in with the test cluster's admin kubeconfig.
 */
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { KubeClient, type ClientOptions } from '../../packages/framework/src/kube/client.ts';
import { kubeconfigConnection, staticCredentials } from '../../packages/framework/src/kube/credentials.ts';
import { ApiError } from '../../packages/framework/src/kube/errors.ts';

export async function adminClient(cluster: ClusterInfo, options: ClientOptions = {}): Promise<KubeClient> {
  return new KubeClient(
    staticCredentials(await kubeconfigConnection({ kubeconfig: cluster.kubeconfig })),
    options,
  );
}

/**
 * Runs one write until it gets an answer, through an apiserver restart (refused connections,
 * 5xx, whatever a starting apiserver answers), for up to `timeoutMs`. A retried write whose
 * first answer was lost may find its work done: `done` tells which errors mean that
 * (AlreadyExists, NotFound). Returns how many attempts failed.
 */
export async function persist(
  what: string,
  write: () => Promise<unknown>,
  done?: (error: ApiError) => boolean,
  timeoutMs = 60_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let failures = 0;
  for (;;) {
    try {
      await write();
      return failures;
    } catch (error) {
      if (failures > 0 && error instanceof ApiError && done?.(error)) return failures;
      if (Date.now() > deadline)
        throw new Error(`${what}: still failing after ${timeoutMs / 1000}s`, { cause: error });
      failures++;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}
