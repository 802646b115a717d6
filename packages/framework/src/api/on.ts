/**
 * `on.*`: registering handlers, as plain calls or as method decorators.
 *
 * ```ts
 * on.create('psqls.test.com', createFn);                       // plain call
 *
 * class PsqlOperator {
 *   @on.create('psqls.test.com')                               // TC39 decorator
 *   async create_fn({ spec, logger }: HandlerContext) { ... }
 * }
 * new PsqlOperator();
 * ```
 *
 * Decorated methods are registered when the class is defined (so `kopf-ts generate` sees them
 * without running anything). Static methods are called on the class. Instance methods are
 * called on the first instance of the class that is constructed: create it yourself (e.g. at
 * module level, where you can pass it dependencies); a handler that fires before any instance
 * exists fails with an error that says so. With TypeScript's legacy `experimentalDecorators`
 * (NestJS-style code bases), the class is instantiated with no arguments on first use instead,
 * since legacy decorators cannot observe construction; the handler ids are also recorded with
 * `reflect-metadata` under `kopf-ts:handlers` on the class.
 */
import 'reflect-metadata';
import type {
  ActivityContext,
  EventContext,
  HandlerContext,
  ObjectContext,
  ReconcileContext,
  SpawningContext,
} from '../registry/context.ts';
import type { TypedResource } from './declarations.ts';
import type { AdmissionContext, MutationContext } from '../registry/admission.ts';
import { addWebhook, type AdmissionHandler, type AdmissionOptions } from '../registry/registry.ts';
import {
  registry,
  type ReconcileOptions,
  addActivity,
  type DaemonOptions,
  type SpawningHandler,
  type TimerOptions,
  addHandler,
  type ActivityKind,
  type ActivityOptions,
  type HandlerOptions,
  type Reason,
  type ResourceSpec,
} from '../registry/registry.ts';

type Fn<C> = (context: C) => unknown;

/** A decorator usable as a TC39 (standard) or a legacy (`experimentalDecorators`) method decorator. */
export interface MethodDecorator {
  (value: (...args: never[]) => unknown, context: ClassMethodDecoratorContext): void;
  (target: object, propertyKey: string | symbol, descriptor: PropertyDescriptor): void;
}

/**
 * Registers with a function, or (without one) returns a method decorator. Annotate the
 * context to type `spec` and `status`: `({ spec }: HandlerContext<PsqlSpec>) => ...`.
 */
export interface Registrar<C> {
  <Spec, Status>(
    resource: TypedResource<Spec, Status>,
    fn: Fn<Retyped<C, Spec, Status>>,
    options?: HandlerOptions<Retyped<C, Spec, Status>>,
  ): Fn<Retyped<C, Spec, Status>>;
  <Ctx extends C>(resource: ResourceSpec, fn: Fn<Ctx>, options?: HandlerOptions<Ctx>): Fn<Ctx>;
  (resource: ResourceSpec, options?: HandlerOptions<C>): MethodDecorator;
}

/** The context of a declared resource: spec and status typed. */
type Retyped<C, Spec, Status> =
  C extends EventContext<unknown, unknown>
    ? EventContext<Spec, Status>
    : C extends HandlerContext<unknown, unknown>
      ? HandlerContext<Spec, Status>
      : ObjectContext<Spec, Status>;

// The widest context a handler may declare: any spec and status types.
/* eslint-disable @typescript-eslint/no-explicit-any */
type AnyHandlerContext = HandlerContext<any, any>;
type AnyEventContext = EventContext<any, any>;
type AnyObjectContext = ObjectContext<any, any>;
type AnyReconcileContext = ReconcileContext<any, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

function originOf(): string | undefined {
  const line = new Error().stack?.split('\n')[4];
  return line?.trim().replace(/^at\s+/, '');
}

/** Who a decorated method is called on, once known. */
interface Binding {
  target?: object;
  factory?: () => object;
  method: (...args: unknown[]) => unknown;
  describe: string;
}

function bound(binding: Binding): (context: never) => unknown {
  return (context) => {
    if (!binding.target && binding.factory) binding.target = binding.factory();
    if (!binding.target) {
      throw new Error(
        `${binding.describe} is an instance method, but no instance of its class was created. Create one (e.g. \`new MyOperator()\` in the operator file), or make the method static.`,
      );
    }
    return binding.method.call(binding.target, context);
  };
}

function makeRegistrar<C>(
  name: string,
  register: (
    resource: ResourceSpec,
    fn: Fn<never>,
    id: string,
    options: HandlerOptions<never>,
    origin?: string,
  ) => void,
): Registrar<C> {
  function registrar(
    resource: ResourceSpec,
    fnOrOptions?: unknown,
    maybeOptions?: HandlerOptions<C>,
  ): unknown {
    const origin = originOf();
    if (typeof fnOrOptions === 'function') {
      const fn = fnOrOptions as Fn<never>;
      const options = (maybeOptions ?? {}) as HandlerOptions<never>;
      const id = options.id ?? fn.name;
      if (!id) throw new Error(`on.${name}(...): the function has no name; give it an id: { id: '...' }.`);
      register(resource, fn, id, options, origin);
      return fn;
    }
    const options = (fnOrOptions ?? {}) as HandlerOptions<never>;
    return function decorator(
      valueOrTarget: unknown,
      contextOrKey: unknown,
      descriptor?: PropertyDescriptor,
    ): void {
      if (typeof contextOrKey === 'object' && contextOrKey !== null && 'kind' in contextOrKey) {
        // Standard (TC39) decorator.
        const context = contextOrKey as DecoratorContext;
        if (context.kind !== 'method') {
          throw new Error(
            `@on.${name}(...) decorates methods, not a ${context.kind} (detected a standard TC39 decorator on '${String(context.name)}').`,
          );
        }
        const methodName = String(context.name);
        const binding: Binding = {
          method: valueOrTarget as Binding['method'],
          describe: `Handler '${options.id ?? methodName}' (method '${methodName}')`,
        };
        context.addInitializer(function (this: unknown) {
          binding.target ??= this as object;
        });
        register(resource, bound(binding), options.id ?? methodName, options, origin);
        return;
      }
      if (
        (typeof contextOrKey === 'string' || typeof contextOrKey === 'symbol') &&
        descriptor &&
        typeof descriptor.value === 'function'
      ) {
        // Legacy `experimentalDecorators` decorator: target is the prototype (or the class for static methods).
        const methodName = String(contextOrKey);
        const isStatic = typeof valueOrTarget === 'function';
        const ctor = (
          isStatic ? valueOrTarget : (valueOrTarget as { constructor: new () => object }).constructor
        ) as new () => object;
        const binding: Binding = {
          method: descriptor.value as Binding['method'],
          describe: `Handler '${options.id ?? methodName}' (method '${methodName}' of ${ctor.name})`,
          target: isStatic ? ctor : undefined,
          factory: isStatic ? undefined : () => new ctor(),
        };
        const id = options.id ?? methodName;
        register(resource, bound(binding), id, options, origin);
        const ids = (Reflect.getMetadata('kopf-ts:handlers', ctor) as string[] | undefined) ?? [];
        Reflect.defineMetadata('kopf-ts:handlers', [...ids, id], ctor);
        return;
      }
      throw new Error(
        `@on.${name}(...) must decorate a class method. It was applied to something else ` +
          `(arguments: ${typeof valueOrTarget}, ${typeof contextOrKey}); neither a standard (TC39) nor a legacy (experimentalDecorators) method decorator call was detected.`,
      );
    };
  }
  return registrar as Registrar<C>;
}

/** Registers an activity with a function, or (without one) returns a method decorator. */
export interface ActivityRegistrar<C> {
  (fn: Fn<C>, options?: ActivityOptions): Fn<C>;
  (options?: ActivityOptions): MethodDecorator;
}

function activity<C>(kind: ActivityKind): ActivityRegistrar<C> {
  const registrar = makeRegistrar<C>(kind, (_resource, fn, id, options, origin) =>
    addActivity({ kind, id, fn, options: options, origin }),
  );
  // Activities are not about a resource: shift the arguments of the shared registrar.
  return ((fnOrOptions?: unknown, options?: ActivityOptions) =>
    (registrar as (...args: unknown[]) => unknown)('', fnOrOptions, options)) as ActivityRegistrar<C>;
}

function changing<C>(name: string, reasons: Reason[]): Registrar<C> {
  return makeRegistrar<C>(name, (resource, fn, id, options, origin) => {
    if (name === 'field' && !options.field)
      throw new Error(`on.field(...) for handler '${id}' needs the field option: { field: 'spec.size' }.`);
    addHandler({ kind: 'changing', reasons, resource, fn, id, options, origin });
  });
}

/** Registers a timer or daemon with a function, or (without one) returns a method decorator. */
export interface SpawningRegistrar<C, O> {
  <Spec, Status>(
    resource: TypedResource<Spec, Status>,
    fn: Fn<SpawningContext<Spec, Status>>,
    options?: O,
  ): Fn<SpawningContext<Spec, Status>>;
  <Ctx extends C>(resource: ResourceSpec, fn: Fn<Ctx>, options?: O): Fn<Ctx>;
  (resource: ResourceSpec, options?: O): MethodDecorator;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type AnySpawningContext = SpawningContext<any, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

function spawning<O>(kind: 'timer' | 'daemon'): SpawningRegistrar<AnySpawningContext, O> {
  return makeRegistrar<AnySpawningContext>(kind, (resource, fn, id, options, origin) => {
    const interval = (options as { interval?: unknown }).interval;
    if (kind === 'timer' && (typeof interval !== 'number' || !(interval > 0))) {
      throw new Error(
        `on.timer(...) for handler '${id}' needs a positive interval in seconds: { interval: 60 }.`,
      );
    }
    addHandler({ kind, resource, fn, id, options: options as SpawningHandler['options'], origin });
  }) as unknown as SpawningRegistrar<AnySpawningContext, O>;
}

/** Registers a reconcile handler with a function, or (without one) returns a method decorator. */
export interface ReconcileRegistrar {
  <Spec, Status>(
    resource: TypedResource<Spec, Status>,
    fn: Fn<ReconcileContext<Spec, Status>>,
    options?: ReconcileOptions<ReconcileContext<Spec, Status>>,
  ): Fn<ReconcileContext<Spec, Status>>;
  <Ctx extends AnyReconcileContext>(
    resource: ResourceSpec,
    fn: Fn<Ctx>,
    options?: ReconcileOptions<Ctx>,
  ): Fn<Ctx>;
  (resource: ResourceSpec, options?: ReconcileOptions<AnyReconcileContext>): MethodDecorator;
}

function reconciling(): ReconcileRegistrar {
  return makeRegistrar<AnyReconcileContext>('reconcile', (resource, fn, id, given, origin) => {
    const options: ReconcileOptions<never> & { field?: unknown; optional?: unknown } = given;
    if (options.field !== undefined || options.optional !== undefined)
      throw new Error(
        `on.reconcile(...) for handler '${id}' takes no 'field' or 'optional' option: it sees the whole object, and no finalizer is involved.`,
      );
    if (options.resync !== undefined && !(typeof options.resync === 'number' && options.resync >= 0))
      throw new Error(`on.reconcile(...) for handler '${id}': resync is in seconds (>= 0; 0 disables it).`);
    for (const owned of options.owns ?? []) {
      const spec = typeof owned === 'object' && 'resource' in owned ? owned.resource : owned;
      if (!spec || (typeof spec === 'string' && !spec.split('.')[0]))
        throw new Error(`on.reconcile(...) for handler '${id}': an empty resource in 'owns'.`);
    }
    addHandler({ kind: 'reconciling', resource, fn, id, options, origin });
  });
}

function indexing(): Registrar<AnyObjectContext> {
  return makeRegistrar<AnyObjectContext>('index', (resource, fn, id, options, origin) => {
    const clash = registry().handlers.find((h) => h.kind === 'indexing' && h.id === id);
    if (clash)
      throw new Error(
        `An on.index handler with id '${id}' is already registered${clash.origin ? ` at ${clash.origin}` : ''}: index ids name the indexes and must be unique. Give one of them another id: { id: '...' }.`,
      );
    addHandler({ kind: 'indexing', resource, fn, id, options, origin });
  });
}

/** Registers an admission handler with a function, or (without one) returns a method decorator. */
export interface AdmissionRegistrar<C> {
  <Spec, Status>(
    resource: TypedResource<Spec, Status>,
    fn: Fn<RetypedAdmission<C, Spec, Status>>,
    options?: AdmissionOptions,
  ): Fn<RetypedAdmission<C, Spec, Status>>;
  <Ctx extends C>(resource: ResourceSpec, fn: Fn<Ctx>, options?: AdmissionOptions): Fn<Ctx>;
  (resource: ResourceSpec, options?: AdmissionOptions): MethodDecorator;
}

type RetypedAdmission<C, Spec, Status> =
  C extends MutationContext<unknown, unknown>
    ? MutationContext<Spec, Status>
    : AdmissionContext<Spec, Status>;

/* eslint-disable @typescript-eslint/no-explicit-any */
type AnyAdmissionContext = AdmissionContext<any, any>;
type AnyMutationContext = MutationContext<any, any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

function admission<C>(kind: AdmissionHandler['kind']): AdmissionRegistrar<C> {
  const name = kind === 'validating' ? 'validate' : 'mutate';
  return makeRegistrar<C>(name, (resource, fn, id, options, origin) =>
    addWebhook({ kind, resource, fn, id, options, origin }),
  );
}

/**
 * Handler registration. Every function takes `(resource, fn, options?)`, or `(resource,
 * options?)` to give a method decorator. Durations in options are in seconds.
 */
export const on = {
  /** An object was created (no diff-base yet). */
  create: changing<AnyHandlerContext>('create', ['create']),
  /** The object's essence changed since it was last handled. */
  update: changing<AnyHandlerContext>('update', ['update']),
  /** The object is being deleted; a finalizer holds it until the handler succeeds (unless `optional`). */
  delete: changing<AnyHandlerContext>('delete', ['delete']),
  /** The operator (re)started and found the object already handled and unchanged. */
  resume: changing<AnyHandlerContext>('resume', ['resume']),
  /** A field (the `field` option) changed: on creation, update, or resume with the field set. */
  field: changing<AnyHandlerContext>('field', ['create', 'update', 'resume']),
  /** Runs once when the operator starts, before any handler; a failure stops the operator. */
  startup: activity<ActivityContext>('startup'),
  /** Runs once when the operator stops, after the handlers. */
  cleanup: activity<ActivityContext>('cleanup'),
  /**
   * Authenticates: returns connection info (server, CA, token or client certificate, …) or
   * nothing when not applicable. Re-run when the apiserver rejects the credentials (401).
   * Registering one replaces the built-in `login_via_client`.
   */
  login: activity<ActivityContext>('login'),
  /** A health probe: its result is reported by the `--liveness` endpoint. */
  probe: activity<ActivityContext>('probe'),
  /** Every watch event of the resource; nothing is persisted, errors are only logged. */
  event: makeRegistrar<AnyEventContext>('event', (resource, fn, id, options, origin) =>
    addHandler({ kind: 'watching', resource, fn, id, options, origin }),
  ),
  /**
   * An in-memory index of the resource's objects, kept current from the watch streams. The
   * function returns, for one object, a map (plain object or `Map`) of keys to values, any
   * other value (indexed under the key `null`), or nothing. Handlers get it as
   * `indexes.get<V>(id)`; they run only once all indexes are populated at start-up.
   */
  index: indexing(),
  /**
   * Level-based: called with the current state of the object on every change of it, of its
   * children (`owns`, by ownerReference, watched with a label selector), and every `resync`
   * seconds (default 300). Must be idempotent. Its result lands in `status.<id>`; failures
   * are retried with backoff.
   */
  reconcile: reconciling(),
  /**
   * A periodic handler per object: `{ interval, idle?, initialDelay?, sharp? }` (seconds). Runs
   * while the object exists and the operator is not paused; its result lands in `status.<id>`.
   */
  timer: spawning<TimerOptions<AnySpawningContext>>('timer'),
  /**
   * A long-running async function per object, given an AbortSignal (`signal`) that fires when
   * the object is being deleted, the operator pauses or stops. Deletion waits for it to return
   * (up to `cancellationTimeout`, default 60 s). Restarted after errors, with backoff.
   */
  daemon: spawning<DaemonOptions<AnySpawningContext>>('daemon'),
  /**
   * An admission webhook that accepts or rejects requests for the resource: throw
   * `AdmissionError` (or any error) to reject. Served with `--webhook-server` (docs/admission.md).
   */
  validate: admission<AnyAdmissionContext>('validating'),
  /** An admission webhook that changes objects before they are stored, through `patch`. */
  mutate: admission<AnyMutationContext>('mutating'),
};
