/**
 * What admission handlers (`on.validate`, `on.mutate`) receive, and `AdmissionError`, with
 * which they reject a request. Built by `admission/`, documented for users (docs/admission.md).
 */
import type { JsonObject } from '../util/json.ts';
import type { Logger } from '../util/logging.ts';
import type { KubeObject, ObjectMeta, ResourceInfo } from './context.ts';
import type { AdmissionOperation } from './registry.ts';

const ADMISSION = Symbol.for('kopf-ts.AdmissionError');

/**
 * Rejects an admission request with this message (shown by kubectl as `admission webhook
 * "<name>" denied the request: <message>`). `code` is the HTTP status the apiserver answers
 * with (default: the apiserver's, 400).
 */
export class AdmissionError extends Error {
  override readonly name = 'AdmissionError';
  readonly code: number | undefined;
  readonly [ADMISSION] = true;
  constructor(message: string, code?: number, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ADMISSION] === true
    );
  }
}

/** Who sent the request, as the apiserver authenticated them. */
export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** What `on.validate` handlers receive. */
export interface AdmissionContext<Spec = JsonObject, Status = JsonObject> {
  /** The object as it would be stored (for DELETE: the object being deleted). */
  body: KubeObject<Spec, Status>;
  /** `body.spec`, or `{}`. */
  spec: Spec;
  /** `body.status`, or `{}`. */
  status: Status;
  meta: ObjectMeta;
  /** The stored object before the change: UPDATE and DELETE only. */
  old: KubeObject<Spec, Status> | undefined;
  operation: AdmissionOperation;
  /** True for `--dry-run=server` requests: nothing will be stored, so do nothing outside the object. */
  dryRun: boolean;
  userInfo: UserInfo;
  /** The object's uid; undefined on CREATE (the object has none yet). */
  uid: string | undefined;
  /** The AdmissionReview request's uid. */
  requestUid: string;
  /** May be empty on CREATE with `generateName`. */
  name: string;
  namespace: string | undefined;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  resource: ResourceInfo;
  /** The subresource of the request (e.g. `status`), if any. */
  subresource: string | undefined;
  /** Logs with the `[namespace/name]` prefix. */
  logger: Logger;
  /** Warnings for the client (kubectl prints them): `warnings.push('…')`. */
  warnings: string[];
  /** The handler's `param` option. */
  param: unknown;
}

/** What `on.mutate` handlers receive: also a `patch` to change the object. */
export interface MutationContext<Spec = JsonObject, Status = JsonObject> extends AdmissionContext<
  Spec,
  Status
> {
  /**
   * Changes to the object, with merge-patch semantics (`null` removes a key; objects merge;
   * arrays and other values replace): e.g. `patch.spec = { size: 1 }`. Sent to the apiserver
   * as a JSON patch.
   */
  patch: Record<string, unknown>;
}
