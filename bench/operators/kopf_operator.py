"""
The Python Kopf operator of `npm run bench`: the same handlers as bench/operators/kopf-ts-operator.ts.
Each call prints one marker line on stdout, which the bench counts.

The handlers are `async def`, Kopf's fastest kind: sync handlers would run in a thread pool.
Each marker is a single write, so that lines of concurrent calls never interleave.

    KUBECONFIG=... python -m kopf run --standalone -n bench bench/operators/kopf_operator.py
"""
import sys

import kopf

GROUP, VERSION, PLURAL = 'bench.kopf-ts.dev', 'v1', 'benches'


@kopf.on.create(GROUP, VERSION, PLURAL)
async def create_fn(name, spec, **_):
    sys.stdout.write(f'CALL create_fn {name} {spec.get("n")}\n')
    sys.stdout.flush()
    return {'n': spec.get('n')}


@kopf.on.update(GROUP, VERSION, PLURAL)
async def update_fn(name, spec, **_):
    sys.stdout.write(f'CALL update_fn {name} {spec.get("n")}\n')
    sys.stdout.flush()
    return {'n': spec.get('n')}
