/**
 * One AdmissionReview: the request as the apiserver sends it, the handler's context, the
 * handler's verdict, and the response (allowed or not, the status, the JSON patch, warnings).
 */
import { AdmissionError, type MutationContext, type UserInfo } from '../registry/admission.ts';
import type { KubeObject, ObjectMeta } from '../registry/context.ts';
import {
  ABSENT,
  PRESENT,
  type AdmissionHandler,
  type AdmissionOperation,
  type MetaFilter,
} from '../registry/registry.ts';
import { objectLogger, type Logger } from '../util/logging.ts';
import { mergePatchToJsonPatch } from './patch.ts';

/** `admission.k8s.io/v1` AdmissionRequest, the fields used here. */
export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: AdmissionOperation;
  userInfo?: UserInfo;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code?: number; message: string };
  patchType?: 'JSONPatch';
  /** Base64 of the JSON patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

function metaMatches(
  filters: Record<string, MetaFilter> | undefined,
  actual: Record<string, string>,
): boolean {
  for (const [key, filter] of Object.entries(filters ?? {})) {
    const value = actual[key];
    if (filter === PRESENT ? value === undefined : filter === ABSENT ? value !== undefined : false)
      return false;
    if (typeof filter === 'function' && !filter(value)) return false;
    if (typeof filter === 'string' && value !== filter) return false;
  }
  return true;
}

/** Runs the handler for one request and says what to answer. Never throws. */
export async function review(
  handler: AdmissionHandler,
  request: AdmissionRequest,
  logger: Logger,
): Promise<AdmissionResponse> {
  const body = (request.object ?? request.oldObject ?? { metadata: {} }) as KubeObject;
  const meta: ObjectMeta = body.metadata ?? {};
  const labels = meta.labels ?? {};
  const annotations = meta.annotations ?? {};
  const allowed: AdmissionResponse = { uid: request.uid, allowed: true };
  if (!metaMatches(handler.options.labels, labels) || !metaMatches(handler.options.annotations, annotations))
    return allowed;
  const name = request.name || meta.name || '';
  const namespace = request.namespace || meta.namespace || undefined;
  const warnings: string[] = [];
  const patch: Record<string, unknown> = {};
  const context: MutationContext = {
    body,
    spec: body.spec ?? {},
    status: body.status ?? {},
    meta,
    old: request.oldObject ?? undefined,
    operation: request.operation,
    dryRun: request.dryRun === true,
    userInfo: request.userInfo ?? {},
    uid: meta.uid || undefined,
    requestUid: request.uid,
    name,
    namespace,
    labels,
    annotations,
    resource: {
      group: request.resource?.group ?? '',
      version: request.resource?.version ?? '',
      plural: request.resource?.resource ?? '',
      kind: request.kind?.kind ?? body.kind ?? '',
      namespaced: Boolean(request.namespace),
    },
    subresource: request.subResource || undefined,
    logger: objectLogger(
      logger,
      namespace,
      name || (typeof meta.generateName === 'string' ? meta.generateName : undefined),
    ),
    warnings,
    param: handler.options.param,
    patch,
  };
  if (handler.kind === 'validating') delete (context as Partial<MutationContext>).patch;
  const kind = handler.kind === 'validating' ? 'Validation' : 'Mutation';
  try {
    await (handler.fn as (c: MutationContext) => unknown)(context);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof AdmissionError) {
      context.logger.info(`${kind} handler '${handler.id}' rejected the ${request.operation}: ${message}`);
      return {
        uid: request.uid,
        allowed: false,
        status: { ...(error.code !== undefined ? { code: error.code } : {}), message },
        ...(warnings.length ? { warnings } : {}),
      };
    }
    context.logger.error(
      { err: error },
      `${kind} handler '${handler.id}' failed, so the ${request.operation} is rejected: ${message}`,
    );
    return {
      uid: request.uid,
      allowed: false,
      status: { code: 500, message },
      ...(warnings.length ? { warnings } : {}),
    };
  }
  if (warnings.length) allowed.warnings = warnings;
  if (handler.kind === 'mutating' && request.object) {
    const ops = mergePatchToJsonPatch(request.object, patch);
    if (ops.length) {
      allowed.patchType = 'JSONPatch';
      allowed.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
      context.logger.debug(`Mutation handler '${handler.id}' patched the object: ${JSON.stringify(ops)}`);
    }
  }
  return allowed;
}
