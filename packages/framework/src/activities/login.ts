/**
 * Authentication as Kopf does it: login activities (`on.login`, or the built-in
 * `login_via_client`: the pod's ServiceAccount in a cluster, else the kubeconfig) fill a vault
 * of credentials; the client uses the highest-priority ones; when the apiserver rejects them
 * (401) they are dropped and, when none are left, the login activities run again. When no
 * login succeeds, the vault says so and the operator exits.
 */
import {
  inCluster,
  inClusterConnection,
  kubeconfigConnection,
  type ConnectionInfo,
  type CredentialsSource,
} from '../kube/credentials.ts';
import type { Memo } from '../registry/context.ts';
import type { ActivityHandler } from '../registry/registry.ts';
import type { Logger } from '../util/logging.ts';
import { ActivityError, runActivity } from './run.ts';

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

function isConnectionInfo(value: unknown): value is ConnectionInfo {
  return typeof value === 'object' && value !== null && typeof (value as ConnectionInfo).server === 'string';
}

/** The credentials of all login activities; implements what the API client needs. */
export class Vault implements CredentialsSource {
  private items: Array<{ id: string; info: ConnectionInfo }> = [];
  private relogin?: Promise<void>;
  /** Set when no login activity can provide credentials any more. */
  exhausted?: Error;

  constructor(
    private readonly activities: ActivityHandler[],
    private readonly logger: Logger,
    private readonly memo: Memo,
    /** Told when the vault runs out of credentials for good (the operator then stops). */
    private readonly onExhausted: (error: Error) => void = () => undefined,
  ) {}

  /** Runs all login activities; fails if none provides credentials. */
  async login(initial = false): Promise<void> {
    const log = this.logger.child({ name: 'kopf.activities.auth' });
    if (initial) this.logger.info('Initial authentication has been initiated.');
    const items: Array<{ id: string; info: ConnectionInfo }> = [];
    const failures: string[] = [];
    for (const activity of this.activities) {
      try {
        const result = await runActivity(activity, log, this.memo);
        if (isConnectionInfo(result)) items.push({ id: activity.id, info: result });
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    if (!items.length) {
      const error = new Error(
        `Ran out of valid credentials: ${failures.length ? failures.join('; ') : 'no login activity returned credentials'}.`,
      );
      this.exhausted = error;
      throw error;
    }
    this.items = items.sort((a, b) => (b.info.priority ?? 0) - (a.info.priority ?? 0));
    if (initial) this.logger.info('Initial authentication has finished.');
  }

  current(): Promise<ConnectionInfo> {
    const first = this.items[0];
    if (first) return Promise.resolve(first.info);
    return Promise.reject(this.exhausted ?? new Error('Not authenticated yet.'));
  }

  async invalidate(rejected: ConnectionInfo, error: Error): Promise<void> {
    const before = this.items.length;
    this.items = this.items.filter((i) => i.info !== rejected);
    if (this.items.length < before) this.logger.warn(`Credentials were rejected: ${error.message}`);
    if (this.items.length) return;
    // Several requests may fail at once: one re-login serves them all.
    this.relogin ??= this.login().finally(() => (this.relogin = undefined));
    try {
      await this.relogin;
    } catch (failure) {
      this.onExhausted(failure as Error);
      throw failure;
    }
  }
}

/** The built-in login activity, used when the operator registers no `on.login` of its own. */
export function builtinLogin(options: LoginOptions): ActivityHandler {
  return {
    kind: 'login',
    id: 'login_via_client',
    fn: (context: { logger: Logger }) => loginViaClient(context.logger, options),
    // Misconfiguration does not fix itself: a few quick attempts, then a clear failure.
    options: { retries: 3, backoff: 1 },
  };
}

export { ActivityError };
