/**
 * kopf-ts: Kubernetes operators as a few decorated TypeScript handlers.
 *
 * ```ts
 * import { on, TemporaryError, PermanentError, adopt } from 'kopf-ts';
 * on.create('psqls.test.com', async function create_fn({ spec, logger }) { ... });
 * ```
 * @packageDocumentation
 */
export { adopt, type Adoptable } from './api/adopt.ts';
export { declareAccess, defineResource, type TypedResource } from './api/declarations.ts';
export {
  on,
  type ActivityRegistrar,
  type MethodDecorator,
  type ReconcileRegistrar,
  type Registrar,
  type SpawningRegistrar,
} from './api/on.ts';
export type {
  ActivityContext,
  AnyObject,
  DiffItem,
  EventContext,
  HandlerContext,
  Index,
  IndexKey,
  Indexes,
  KubeObject,
  Memo,
  ObjectApi,
  ObjectContext,
  ObjectMeta,
  ReconcileContext,
  ResourceInfo,
  SpawningContext,
} from './registry/context.ts';
export { PermanentError, TemporaryError } from './registry/errors.ts';
export {
  AdmissionError,
  type AdmissionContext,
  type MutationContext,
  type UserInfo,
} from './registry/admission.ts';
export type { AdmissionOperation, AdmissionOptions } from './registry/registry.ts';
export type { AdmissionRegistrar } from './api/on.ts';
export type { WebhookOptions } from './admission/serve.ts';
export {
  ABSENT,
  PRESENT,
  type ActivityOptions,
  type DaemonOptions,
  type TimerOptions,
  type ErrorsMode,
  type HandlerOptions,
  type MetaFilter,
  type OwnedResource,
  type ReconcileOptions,
  type PermissionDeclaration,
  type Reason,
  type ResourceDeclaration,
  type ResourceSpec,
} from './registry/registry.ts';
export { Operator, type OperatorEvents, type OperatorOptions } from './runtime/operator.ts';
export type { EventPosting } from './processing/events.ts';
export type { ConnectionInfo, CredentialsSource } from './kube/credentials.ts';
export { ApiError, ConnectionError } from './kube/errors.ts';
export type { JsonObject, JsonValue } from './util/json.ts';
export type { Logger } from './util/logging.ts';
