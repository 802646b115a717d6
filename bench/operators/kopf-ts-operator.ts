/**
 * The kopf-ts operator of `npm run bench`: a cheap create handler and an update handler on the
 * bench resource. Each call prints one marker line on stdout, which the bench counts.
 *
 *     kopf-ts run bench/operators/kopf-ts-operator.ts -n bench --standalone
 */
import { on, type HandlerContext } from 'kopf-ts';

const R = 'benches.bench.kopf-ts.dev';

on.create(R, function create_fn({ name, spec }: HandlerContext<{ n: number }>) {
  process.stdout.write(`CALL create_fn ${name} ${spec.n}\n`);
  return { n: spec.n };
});

on.update(R, function update_fn({ name, spec }: HandlerContext<{ n: number }>) {
  process.stdout.write(`CALL update_fn ${name} ${spec.n}\n`);
  return { n: spec.n };
});
