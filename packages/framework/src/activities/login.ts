/**
 * The built-in login: the pod's ServiceAccount when running in a cluster, else the kubeconfig
 * (client-node's KubeConfig: KUBECONFIG, ~/.kube/config, contexts, exec plugins, certificates).
 * Logged as Kopf logs its authentication activities.
 */
import {
  inCluster,
  inClusterConnection,
  kubeconfigConnection,
  staticCredentials,
  type ConnectionInfo,
  type CredentialsSource,
} from '../kube/credentials.ts';
import type { Logger } from '../util/logging.ts';

export interface LoginOptions {
  kubeconfig?: string;
  context?: string;
}

/** Kopf's `login_via_client`: in-cluster first, then the kubeconfig. */
export async function loginViaClient(logger: Logger, options: LoginOptions = {}): Promise<ConnectionInfo> {
  if (!options.kubeconfig && inCluster()) {
    const info = inClusterConnection();
    logger.info('Client is configured in cluster with service account.');
    return info;
  }
  const info = await kubeconfigConnection(options);
  logger.info(`Client is configured via kubeconfig file (${info.source ?? 'default context'}).`);
  return info;
}

/**
 * Runs the initial authentication and returns a credentials source that logs in again when
 * the apiserver rejects the credentials (401), e.g. after a ServiceAccount token rotated.
 */
export async function authenticate(logger: Logger, options: LoginOptions = {}): Promise<CredentialsSource> {
  const log = logger.child({ name: 'kopf.activities.auth' });
  logger.info('Initial authentication has been initiated.');
  let current: ConnectionInfo;
  try {
    current = await loginViaClient(log, options);
  } catch (error) {
    log.error(`Activity 'login_via_client' failed: ${(error as Error).message}`);
    throw new Error(`Ran out of valid credentials: login_via_client failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  log.info("Activity 'login_via_client' succeeded.");
  logger.info('Initial authentication has finished.');
  return {
    current: () => Promise.resolve(current),
    async invalidate(rejected, error) {
      if (rejected !== current) return; // another request already logged in again
      logger.warn(`The credentials were rejected (${error.message}); re-authenticating.`);
      try {
        current = await loginViaClient(log, options);
        log.info("Activity 'login_via_client' succeeded.");
      } catch (retryError) {
        await staticCredentials(rejected).invalidate(rejected, retryError as Error);
      }
    },
  };
}
