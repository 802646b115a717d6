"""
A minimal operator for the real Python Kopf, used by test/integration/kopf-interop.test.ts to
check that Kopf and kopf-ts hand objects over to each other without running handlers again.

    KUBECONFIG=... python -m kopf run --standalone --verbose --namespace NS interop_operator.py

Every handler call prints one marker line on stdout (flushed at once), which the test waits for:

    KOPF-EVENT <namespace>/<name> <event type>        (every watch event, incl. the initial list)
    KOPF-CALL create_fn <namespace>/<name>
    KOPF-CALL update_fn <namespace>/<name> <diff as JSON: [[op, [path...], old, new], ...]>

The handlers return nothing, so Kopf writes no results into `status`: all that Kopf stores on
the objects is its diff-base (and, transiently, its progress annotations).
"""
import json
import sys

import kopf

GROUP, VERSION, PLURAL = 'kopf-ts.dev', 'v1', 'kopftests'


def marker(*parts: str) -> None:
    print(*parts, flush=True)
    sys.stdout.flush()


@kopf.on.event(GROUP, VERSION, PLURAL)
def event_fn(type, namespace, name, **_):
    # `type` is None for the objects of the initial listing.
    marker('KOPF-EVENT', f'{namespace}/{name}', str(type))


@kopf.on.create(GROUP, VERSION, PLURAL)
def create_fn(namespace, name, **_):
    marker('KOPF-CALL', 'create_fn', f'{namespace}/{name}')


@kopf.on.update(GROUP, VERSION, PLURAL)
def update_fn(namespace, name, diff, **_):
    items = [[str(op), list(field), old, new] for op, field, old, new in diff]
    marker('KOPF-CALL', 'update_fn', f'{namespace}/{name}', json.dumps(items, separators=(',', ':')))
