/**
 * A kopf-ts API client for tests, logged in with the test cluster's admin kubeconfig.
 */
import type { ClusterInfo } from '../../cluster/cluster.ts';
import { KubeClient, type ClientOptions } from '../../packages/framework/src/kube/client.ts';
import { kubeconfigConnection, staticCredentials } from '../../packages/framework/src/kube/credentials.ts';

export async function adminClient(cluster: ClusterInfo, options: ClientOptions = {}): Promise<KubeClient> {
  return new KubeClient(
    staticCredentials(await kubeconfigConnection({ kubeconfig: cluster.kubeconfig })),
    options,
  );
}
