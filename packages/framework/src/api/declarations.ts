/**
 * Declaring what an operator owns and needs: its custom resources (for typed handlers and for
 * the CRDs that `kopf-ts generate` emits) and its access to other resources, such as its
 * children (for the generated RBAC).
 */
import { registry, type PermissionDeclaration, type ResourceDeclaration } from '../registry/registry.ts';

/** A declared custom resource; usable wherever a resource is expected. Carries its spec/status types. */
export interface TypedResource<Spec = unknown, Status = unknown> {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  /** Type-level only: the spec and status types. */
  readonly __types?: [Spec, Status];
}

/**
 * Declares a custom resource of this operator.
 *
 * ```ts
 * export const Psql = defineResource<PsqlSpec, PsqlStatus>({
 *   group: 'test.com', version: 'v1', kind: 'psql', plural: 'psqls', scope: 'Namespaced',
 *   schema: { type: 'object', properties: { spec: { ... } } },
 * });
 * on.create(Psql, async function create_fn({ spec }) { spec.size; });  // typed
 * ```
 */
export function defineResource<Spec = Record<string, unknown>, Status = Record<string, unknown>>(
  declaration: ResourceDeclaration,
): TypedResource<Spec, Status> {
  const r = registry();
  if (
    !r.resources.some(
      (d) =>
        d.group === declaration.group && d.plural === declaration.plural && d.version === declaration.version,
    )
  )
    r.resources.push(declaration);
  return {
    group: declaration.group,
    version: declaration.version,
    plural: declaration.plural,
    kind: declaration.kind,
  };
}

/**
 * Declares access the operator's handlers need beyond the resources they handle, e.g. to the
 * children they create: `declareAccess({ group: 'apps', resource: 'statefulsets', verbs: ['get', 'create', 'patch'] })`.
 */
export function declareAccess(...permissions: PermissionDeclaration[]): void {
  registry().permissions.push(...permissions);
}
