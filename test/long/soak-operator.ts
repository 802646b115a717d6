/** The soak test's operator: create, update and delete handlers that do a little work. */
import { on, type HandlerContext } from 'kopf-ts';

console.error(`PID ${process.pid}`);
on.create('kopftests.kopf-ts.dev', function create_fn({ spec }: HandlerContext<{ n: number }>) {
  return { seen: spec.n };
});
on.update('kopftests.kopf-ts.dev', function update_fn({ diff }) {
  return { changes: diff.length };
});
on.delete('kopftests.kopf-ts.dev', function delete_fn() {});
