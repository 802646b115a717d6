/**
 * The psql operator, kopf-ts's reference operator: a `psql` resource (`test.com/v1`,
 * `spec.size: N`) becomes a PostgreSQL StatefulSet `psql-pod` with N replicas, a headless
 * Service, a generated password Secret, and one 1Gi ReadWriteOnce volume per pod
 * (`www-psql-pod-0..N-1`). Its status tells how many replicas are ready, with a `Ready`
 * condition carrying `observedGeneration` (what Argo CD and Flux read).
 *
 *   kopf-ts run packages/psql-operator/src/operator.ts -n default
 */
import { randomBytes } from 'node:crypto';
import { adopt, declareAccess, defineResource, on, PermanentError, TemporaryError } from 'kopf-ts';
import type { AnyObject, EventContext, HandlerContext, KubeObject, ObjectApi } from 'kopf-ts';

/** The StatefulSet's fixed name (one psql per namespace), as in the reference demo. */
export const STATEFULSET = 'psql-pod';
const SERVICE = 'psql-pod';
const SECRET = 'psql-pod-auth';
const MANAGED_BY = 'psql-operator';
export const MAX_SIZE = 16;

export interface PsqlSpec {
  size: number;
}
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}
export interface PsqlStatus {
  readyReplicas?: number;
  replicas?: number;
  observedGeneration?: number;
  conditions?: Condition[];
  [handlerResult: string]: unknown;
}

export const Psql = defineResource<PsqlSpec, PsqlStatus>({
  group: 'test.com',
  version: 'v1',
  kind: 'psql',
  plural: 'psqls',
  singular: 'psql',
  scope: 'Namespaced',
  schema: {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        required: ['size'],
        properties: {
          size: {
            type: 'integer',
            minimum: 0,
            maximum: MAX_SIZE,
            description: 'PostgreSQL replicas (pods).',
          },
        },
      },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  },
  printerColumns: [
    { name: 'Size', type: 'integer', jsonPath: '.spec.size' },
    { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
});

declareAccess(
  { group: 'apps', resource: 'statefulsets', verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { group: '', resource: 'services', verbs: ['get', 'create', 'patch'] },
  { group: '', resource: 'secrets', verbs: ['get', 'create'] },
  { group: 'test.com', resource: 'psqls', verbs: ['get'] },
);

type PsqlBody = KubeObject<PsqlSpec, PsqlStatus>;

/** `spec.size` as an integer in range, or a PermanentError naming the field. */
export function validSize(spec: unknown): number {
  const size = (spec as { size?: unknown } | undefined)?.size;
  if (size === undefined || size === null)
    throw new PermanentError('spec.size is missing: set it to the number of replicas (0..16).');
  if (typeof size !== 'number' || !Number.isInteger(size))
    throw new PermanentError(`spec.size must be an integer, got ${JSON.stringify(size)}.`);
  if (size < 0 || size > MAX_SIZE)
    throw new PermanentError(`spec.size must be between 0 and ${MAX_SIZE}, got ${size}.`);
  return size;
}

function condition(
  status: Condition['status'],
  reason: string,
  message: string,
  generation: number | undefined,
): Condition {
  return {
    type: 'Ready',
    status,
    reason,
    message,
    observedGeneration: generation,
    lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

function labels(psql: PsqlBody): Record<string, string> {
  return {
    app: STATEFULSET,
    'app.kubernetes.io/managed-by': MANAGED_BY,
    'test.com/psql': psql.metadata.name,
  };
}

/** Who owns an object, by controller reference. */
function controllerOf(obj: AnyObject | undefined): { kind: string; name: string; uid: string } | undefined {
  const refs = (obj?.metadata.ownerReferences ?? []) as Array<{
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
  }>;
  return refs.find((r) => r.controller);
}

/**
 * Creates or updates the children of a psql (idempotent: safe to repeat after a crash).
 * A StatefulSet `psql-pod` owned by another psql is never taken over.
 */
export async function ensureChildren(api: ObjectApi, psql: PsqlBody, size: number): Promise<void> {
  const namespace = psql.metadata.namespace;
  const existing = await api.get('apps/v1', 'StatefulSet', STATEFULSET, namespace);
  const owner = controllerOf(existing);
  if (existing && owner?.uid !== psql.metadata.uid) {
    const who = owner ? `${owner.kind} '${owner.name}'` : 'nobody (it was created by hand)';
    throw new PermanentError(
      `StatefulSet ${STATEFULSET} already exists in ${namespace} and belongs to ${who}; one psql per namespace.`,
    );
  }
  if (!(await api.get('v1', 'Secret', SECRET, namespace))) {
    const secret = adopt(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: SECRET, labels: labels(psql) },
        type: 'Opaque',
        stringData: { POSTGRES_PASSWORD: randomBytes(18).toString('base64url') },
      },
      psql,
    );
    try {
      await api.create(secret);
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error; // created meanwhile: fine
    }
  }
  await api.apply(
    adopt(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: SERVICE, labels: labels(psql) },
        spec: {
          clusterIP: 'None',
          selector: { app: STATEFULSET, 'test.com/psql': psql.metadata.name },
          ports: [{ name: 'postgres', port: 5432 }],
        },
      },
      psql,
    ),
  );
  await api.apply(
    adopt(
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: STATEFULSET, labels: labels(psql) },
        spec: {
          serviceName: SERVICE,
          replicas: size,
          podManagementPolicy: 'OrderedReady',
          selector: { matchLabels: { app: STATEFULSET, 'test.com/psql': psql.metadata.name } },
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
          template: {
            metadata: { labels: { app: STATEFULSET, 'test.com/psql': psql.metadata.name } },
            spec: {
              containers: [
                {
                  name: 'postgres',
                  image: 'postgres:16',
                  ports: [{ name: 'postgres', containerPort: 5432 }],
                  env: [
                    {
                      name: 'POSTGRES_PASSWORD',
                      valueFrom: { secretKeyRef: { name: SECRET, key: 'POSTGRES_PASSWORD' } },
                    },
                    { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
                  ],
                  readinessProbe: { exec: { command: ['pg_isready', '-U', 'postgres'] }, periodSeconds: 10 },
                  volumeMounts: [{ name: 'www', mountPath: '/var/lib/postgresql/data' }],
                },
              ],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: 'www' },
              spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
            },
          ],
        },
      },
      psql,
    ),
  );
}

/** Writes the psql's status from its StatefulSet: ready replicas and the Ready condition. */
async function reportStatus(api: ObjectApi, psql: PsqlBody, sts: AnyObject | undefined): Promise<void> {
  const generation = psql.metadata.generation;
  const wanted = psql.spec?.size ?? 0;
  const status = (sts?.status ?? {}) as { readyReplicas?: number; replicas?: number };
  const ready = status.readyReplicas ?? 0;
  const cond = !sts
    ? condition('False', 'StatefulSetMissing', `StatefulSet ${STATEFULSET} does not exist.`, generation)
    : ready >= wanted
      ? condition('True', 'AllReplicasReady', `${ready}/${wanted} replicas are ready.`, generation)
      : condition('False', 'ReplicasNotReady', `${ready}/${wanted} replicas are ready.`, generation);
  const previous = psql.status?.conditions?.find((c) => c.type === 'Ready');
  if (previous?.status === cond.status) cond.lastTransitionTime = previous.lastTransitionTime;
  if (
    previous &&
    previous.status === cond.status &&
    previous.message === cond.message &&
    previous.observedGeneration === generation &&
    psql.status?.readyReplicas === ready
  )
    return;
  await api.patch(
    'test.com/v1',
    'psql',
    psql.metadata.name,
    psql.metadata.namespace,
    {
      status: {
        readyReplicas: ready,
        replicas: status.replicas ?? 0,
        observedGeneration: generation ?? null,
        conditions: [cond],
      },
    },
    { subresource: 'status' },
  );
}

/**
 * Runs `work`; a PermanentError (bad spec, a conflict) is also written to the psql's status as
 * a `Ready=False` condition naming the problem, then re-thrown for the framework to record.
 */
async function reporting<T>(
  body: PsqlBody,
  patch: Record<string, unknown>,
  reason: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PermanentError)
      patch.status = { conditions: [condition('False', reason, error.message, body.metadata.generation)] };
    throw error;
  }
}

on.create(
  Psql,
  async function create_fn({ body, spec, api, logger, patch }: HandlerContext<PsqlSpec, PsqlStatus>) {
    const size = await reporting(body, patch, 'InvalidSpec', () => Promise.resolve(validSize(spec)));
    await reporting(body, patch, 'Conflict', () => ensureChildren(api, body, size));
    logger.info(`StatefulSet ${STATEFULSET} created with ${size} replicas.`);
    return { statefulSet: STATEFULSET, size };
  },
);

on.update(
  Psql,
  async function scale_fn({
    body,
    spec,
    old,
    new: updated,
    api,
    logger,
    patch,
  }: HandlerContext<PsqlSpec, PsqlStatus>) {
    const size = await reporting(body, patch, 'InvalidSpec', () => Promise.resolve(validSize(spec)));
    await reporting(body, patch, 'Conflict', () => ensureChildren(api, body, size));
    logger.info(
      `StatefulSet ${STATEFULSET} scaled from ${JSON.stringify(old)} to ${JSON.stringify(updated)} replicas.`,
    );
    return { size };
  },
  { field: 'spec.size' },
);

/**
 * Keeps each psql's status current as its StatefulSet changes, and recreates a StatefulSet
 * deleted by hand.
 */
on.event(
  'statefulsets.apps',
  async function statefulset_event({ type, body, api, logger }: EventContext) {
    const owner = controllerOf(body);
    if (!owner || owner.kind !== 'psql') return;
    const psql = await api.get<PsqlBody & AnyObject>(
      'test.com/v1',
      'psql',
      owner.name,
      body.metadata.namespace,
    );
    if (!psql || psql.metadata.uid !== owner.uid || psql.metadata.deletionTimestamp) return;
    if (type === 'DELETED') {
      logger.warn(`StatefulSet ${STATEFULSET} of psql '${owner.name}' was deleted; recreating it.`);
      try {
        await ensureChildren(api, psql, validSize(psql.spec));
      } catch (error) {
        if (error instanceof PermanentError) return; // the psql's own handlers report bad specs
        throw new TemporaryError(`could not recreate ${STATEFULSET}: ${(error as Error).message}`);
      }
      await reportStatus(api, psql, undefined);
      return;
    }
    await reportStatus(api, psql, body);
  },
  { labels: { 'app.kubernetes.io/managed-by': MANAGED_BY } },
);
