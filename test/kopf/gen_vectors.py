#!/usr/bin/env python3
"""
Generate byte-exact test vectors for kopf-ts from the REAL Python Kopf (pinned: 1.45.2).

Usage (see README.md):

    PY="$(bash test/kopf/venv.sh)"
    "$PY" test/kopf/gen_vectors.py [OUTPUT]   # default: test/vectors/kopf-state.json

This script never re-implements Kopf's logic: it only drives Kopf's own classes and
functions and records the inputs and the outputs. Input bodies and stored annotation
values are given as JSON *text* and parsed with ``json.loads`` (so the key order,
duplicate keys, big integers and floats follow Python's semantics, as in Kopf).

All times are fixed (no "now"): the output is identical across runs.
"""
import asyncio
import datetime
import json
import os
import sys
import warnings
from importlib import metadata
from typing import Any

from kopf._cogs.configs import configuration, conventions, diffbase, progress
from kopf._cogs.structs import bodies, diffs, patches
from kopf._core.actions import execution, progression
from kopf._core.engines import peering

PINNED_VERSION = '1.45.2'

DEFAULT_PREFIX = 'kopf.zalando.org'
CUSTOM_PREFIX = 'my-operator.example.com'
KOPF_DOT_PREFIX = 'kopf.example.com'  # starts with "kopf.": no marker is written
LONG_PREFIX = 'a-rather-long-operator-name-for-limits.team-platform.apps.example.com'  # > 63
HUGE_PREFIX = ('x' * 60 + '.') * 3 + 'example.com'  # > 189: Kopf warns

UTC = datetime.UTC


def compact(obj: Any) -> str:
    """ The serialisation used for recording decoded values (not a Kopf format). """
    return json.dumps(obj, sort_keys=False, separators=(',', ':'), ensure_ascii=True)


def plain(obj: Any) -> Any:
    """ Convert Kopf's dict subclasses/views to plain JSON-able structures (order kept). """
    return json.loads(json.dumps(obj))


def patch_annotations(patch: patches.Patch) -> dict[str, Any]:
    """ The ``metadata.annotations`` part of a patch as a plain dict (order kept). """
    return plain(dict(patch).get('metadata', {}).get('annotations', {}))


# ---------------------------------------------------------------------------------------
# Event loop with a fixed clock: Kopf's HandlerState uses basetime + loop.time() as "now".
# ---------------------------------------------------------------------------------------

class FixedTimeLoop(asyncio.SelectorEventLoop):
    fixed_time: float = 0.0

    def time(self) -> float:
        return self.fixed_time


def run_at(loop_time: float, fn: Any) -> Any:
    loop = FixedTimeLoop()
    loop.fixed_time = loop_time

    async def main() -> Any:
        return fn()

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


# ---------------------------------------------------------------------------------------
# Body text builders (raw JSON text, recorded as given).
# ---------------------------------------------------------------------------------------

SYSTEM_META = (
    '"uid":"4c8f0a3e-1d2b-4c5d-9e6f-a1b2c3d4e5f6",'
    '"resourceVersion":"123456",'
    '"generation":7,'
    '"creationTimestamp":"2026-01-02T03:04:05Z",'
    '"finalizers":["kopf.zalando.org/KopfFinalizerMarker"],'
    '"managedFields":[{"manager":"kubectl-client-side-apply","operation":"Update",'
    '"apiVersion":"kopf.dev/v1","time":"2026-01-02T03:04:05Z","fieldsType":"FieldsV1",'
    '"fieldsV1":{"f:spec":{".":{},"f:field":{}}}}]'
)


def body_text(
        spec: str | None = None,
        *,
        labels: str | None = None,
        annotations: str | None = None,
        status: str | None = None,
        name: str = 'kopf-example-1',
        kind: str = 'KopfExample',
        api: str = 'kopf.dev/v1',
        extra_meta: str | None = None,
        extra_top: str | None = None,
        system_meta: bool = True,
) -> str:
    meta = [f'"name":{json.dumps(name)}', '"namespace":"default"']
    if system_meta:
        meta.append(SYSTEM_META)
    if extra_meta:
        meta.append(extra_meta)
    if labels is not None:
        meta.append(f'"labels":{labels}')
    if annotations is not None:
        meta.append(f'"annotations":{annotations}')
    parts = [f'"apiVersion":"{api}"', f'"kind":"{kind}"', '"metadata":{' + ','.join(meta) + '}']
    if spec is not None:
        parts.append(f'"spec":{spec}')
    if extra_top is not None:
        parts.append(extra_top)
    if status is not None:
        parts.append(f'"status":{status}')
    return '{' + ','.join(parts) + '}'


def nested_text(depth: int) -> str:
    text = '"bottom"'
    for i in reversed(range(depth)):
        text = f'{{"level-{i}":{text},"n":{i}}}'
    return text


DRS_OWNER = ('"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web",'
             '"uid":"0f0e0d0c-0b0a-0908-0706-050403020100","controller":true,'
             '"blockOwnerDeletion":true}]')
OTHER_OWNER = ('"ownerReferences":[{"apiVersion":"kopf.dev/v1","kind":"KopfExample",'
               '"name":"parent","uid":"11111111-2222-3333-4444-555555555555"}]')

OLD_PROGRESS = '{\\"started\\":\\"2020-02-14T16:58:25.396364\\",\\"retries\\":0}'


def diffbase_corpus() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def add(name: str, text: str, prefix: str = DEFAULT_PREFIX,
            extra_fields: list[list[str]] | None = None) -> None:
        case: dict[str, Any] = {'name': name, 'prefix': prefix, 'body_json': text}
        if extra_fields is not None:
            case['extra_fields'] = extra_fields
        cases.append(case)

    plain_spec = '{"field":"value","items":["item1","item2"],"replicas":3}'
    add('plain_spec', body_text(plain_spec))
    add('plain_spec_custom_prefix', body_text(plain_spec), CUSTOM_PREFIX)
    add('plain_spec_kopf_dot_prefix', body_text(plain_spec), KOPF_DOT_PREFIX)
    add('plain_spec_long_prefix', body_text(plain_spec), LONG_PREFIX)
    add('plain_spec_with_labels_annotations', body_text(
        plain_spec, labels='{"app":"demo","tier":"backend"}',
        annotations='{"example.com/note":"hello","owner":"team-a"}'))
    add('unicode_cyrillic', body_text(
        '{"greeting":"Привет, мир","name":"Ёжик","ключ":"значение"}',
        labels='{"app":"demo"}', annotations='{"description":"Описание"}'))
    add('unicode_cjk', body_text('{"zh":"你好世界","ja":"こんにちは","ko":"안녕하세요","键":"值"}'))
    add('unicode_accents', body_text(
        '{"café":"crème brûlée","naïve":"Zoë","ß":"Straße","combining":"e\u0301"}'))
    add('unicode_escaped_in_source', body_text(
        '{"e_acute":"\\u00e9","zh":"\\u4e2d\\u6587","emoji":"\\ud83d\\ude00",'
        '"upper_hex":"\\u00C9\\u00DF","mixed":"caf\\u00e9 \u00e9"}'))
    add('emoji_astral', body_text(
        '{"emoji":"😀🎉👍🏽","flag":"🇺🇦","zwj":"👨\u200d👩\u200d👧","😀":"key is emoji",'
        '"math":"𝔘𝔫𝔦𝔠𝔬𝔡𝔢","bmp_max":"\uffff","private":"\ue000"}',
        annotations='{"example.com/emoji":"🚀"}'))
    add('control_characters', body_text(
        '{"escapes":"\\u0000\\u0001\\b\\f\\n\\r\\t\\u000b\\u001f",'
        '"short_forms":"line1\\nline2\\ttab\\r\\n","nul":"a\\u0000b",'
        '"c1":"\u0080\u0085\u009f","separators":"\u2028\u2029"}'))
    add('quotes_backslashes_slashes', body_text(
        '{"quote":"say \\"hi\\"","backslash":"C:\\\\path\\\\to\\\\file",'
        '"slash":"a/b/c","escaped_slash":"a\\/b","html":"<script>alert(1)&amp;</script>",'
        '"single":"it\'s","key\\"with\\\\quote":"v","trailing_backslash":"\\\\"}'))
    add('del_character', body_text(
        '{"raw_del":"a\u007fb","escaped_del":"a\\u007fb","del_key\u007f":"x",'
        '"tilde":"~","space":" "}'))
    add('lone_surrogates', body_text(
        '{"high":"\\ud800","low":"\\udfff","reversed":"\\udc00\\ud800","ok":"\\ud800\\udc00"}'))
    long_key = 'k' * 300
    add('long_keys_and_values', body_text(
        '{"' + long_key + '":"' + 'v' * 5000 + '","' + 'дл' * 100 + '":"' + '長' * 500 + '"}',
        labels='{"' + 'l' * 63 + '":"' + 'x' * 63 + '"}'))
    add('deeply_nested', body_text(
        '{"tree":' + nested_text(64) + ',"arrays":' + '[' * 32 + '1' + ']' * 32 + '}'))
    add('int_like_keys_spec', body_text(
        '{"b":1,"10":"ten","2":"two","1":"one","0":"zero","01":"zero-one","-1":"minus-one",'
        '"a":true,"1.5":"one-and-half","4294967295":"not-array-index","4294967294":"max-index",'
        '"9007199254740993":"big","":"empty","00":"double-zero"}'))
    add('int_like_keys_in_nested_and_arrays', body_text(
        '{"map":{"3":"c","1":"a","2":"b"},"list":[{"2":"x","1":"y"},{"b":1,"0":2}],'
        '"z":{"10":{"2":{"1":null}}}}'))
    add('int_like_keys_labels_annotations', body_text(
        '{"x":1}', labels='{"z":"1","2":"b","1":"a","10":"c","0":"zero"}',
        annotations='{"10":"x","1":"y","example.com/2":"z","0":"w","-1":"m","01":"o"}'))
    add('int_like_keys_custom_prefix', body_text(
        '{"2":"b","1":"a"}', labels='{"2":"b","1":"a"}', annotations='{"3":"c","1":"a"}'),
        CUSTOM_PREFIX)
    add('floats', body_text(
        '{"f_0_1":0.1,"f_1e-07":1e-07,"f_1e16":1e+16,"f_1_5e300":1.5e+300,"f_2_0":2.0,'
        '"f_neg_zero":-0.0,"f_123456789_123":123456789.123,"f_1e21":1e21,"f_1e-5":1e-5,'
        '"f_5e-324":5e-324,"f_0_3":0.30000000000000004,"f_1e22":1e22,"f_1e-6":0.000001,'
        '"f_1e-4":0.0001,"f_max":1.7976931348623157e308,"f_min_normal":2.2250738585072014e-308,'
        '"f_1e15":1000000000000000.0,"f_1e16_plain":10000000000000000.0,"f_1_0":1.0,'
        '"f_upper_E":1E5,"f_exp_plus":1e+2,"f_exp_frac":0.5e1,"f_2_50":2.50,'
        '"f_neg":-1.25e-3,"f_zero_exp":0e0,"f_big_frac":12345678901234567.0,'
        '"f_9007199254740993_0":9007199254740993.0,"f_1e20":1e20,"f_123e-20":123e-20,'
        '"list":[0.1,1e-07,2.0,-0.0,1e21]}'))
    add('float_overflow_to_infinity', body_text('{"huge":1e400,"tiny":1e-400,"neg_huge":-1e400}'))
    add('big_integers', body_text(
        '{"i_2_53_plus_1":9007199254740993,"i_2_64":18446744073709551616,'
        '"i_neg_2_70":-1180591620717411303424,"i_2_53":9007199254740992,'
        '"i_neg_2_53_minus_1":-9007199254740993,"i_30_digits":123456789012345678901234567890,'
        '"i_zero":0,"i_neg_zero":-0,"i_2_63_minus_1":9223372036854775807,'
        '"i_long":' + '9' * 100 + ',"list":[9007199254740993,18446744073709551616]}'))
    add('empty_spec', body_text('{}'))
    add('no_spec', body_text(None))
    add('empty_labels', body_text(plain_spec, labels='{}'))
    add('empty_annotations', body_text(plain_spec, annotations='{}'))
    add('empty_labels_and_annotations', body_text(plain_spec, labels='{}', annotations='{}'))
    add('empty_metadata', '{"apiVersion":"kopf.dev/v1","kind":"KopfExample","metadata":{},'
                          '"spec":{"a":1}}')
    add('no_metadata', '{"apiVersion":"kopf.dev/v1","kind":"KopfExample","spec":{"a":1}}')
    add('only_identity', '{"apiVersion":"kopf.dev/v1","kind":"KopfExample"}')
    add('empty_object', '{}')
    add('status_empty', body_text(plain_spec, status='{}'))
    add('status_with_content', body_text(
        plain_spec, status='{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],'
                           '"kopf":{"progress":{"create_fn":{"started":"2020-02-14T16:58:25.396364",'
                           '"retries":1}},"dummy":"x"}}'))
    add('last_applied_configuration', body_text(
        plain_spec, annotations=(
            '{"kubectl.kubernetes.io/last-applied-configuration":"{\\"apiVersion\\":\\"kopf.dev/v1\\",'
            '\\"kind\\":\\"KopfExample\\",\\"metadata\\":{\\"annotations\\":{},\\"name\\":\\"kopf-example-1\\",'
            '\\"namespace\\":\\"default\\"},\\"spec\\":{\\"field\\":\\"value\\"}}\\n",'
            '"kubectl.kubernetes.io/restartedAt":"2026-01-02T03:04:05Z",'
            '"deployment.kubernetes.io/revision":"3"}')))
    add('only_last_applied_configuration', body_text(
        plain_spec, annotations='{"kubectl.kubernetes.io/last-applied-configuration":"{}\\n"}'))

    other_ops = (
        '{"other-op.example.org/kopf-managed":"yes",'
        '"other-op.example.org/create_fn":"' + OLD_PROGRESS + '",'
        '"other-op.example.org/last-handled-configuration":"{\\"spec\\":{}}\\n",'
        '"other-op.example.org/user-note":"also dropped: the prefix is marked",'
        '"third-op.example.net/kopf-managed":"no",'
        '"third-op.example.net/update_fn":"{}",'
        '"kopf.zalando.org/last-handled-configuration":"{\\"spec\\":{\\"old\\":1}}\\n",'
        '"kopf.zalando.org/create_fn":"' + OLD_PROGRESS + '",'
        '"sub.kopf.zalando.org/something":"dropped: subdomain of a known prefix",'
        '"kopf.zalando.org.evil.com/x":"kept: not a subdomain",'
        '"example.com/kopf-managed-not":"kept: not the marker name",'
        '"example.com/sub/kopf-managed":"kept: name is sub/kopf-managed",'
        '"kopf-managed":"kept: no prefix",'
        '"plain-note":"kept",'
        '"my-operator.example.com/create_fn":"' + OLD_PROGRESS + '"}'
    )
    add('other_kopf_operators_default_prefix', body_text(plain_spec, annotations=other_ops))
    add('other_kopf_operators_custom_prefix', body_text(plain_spec, annotations=other_ops),
        CUSTOM_PREFIX)
    own_default = (
        '{"kopf.zalando.org/create_fn":"' + OLD_PROGRESS + '",'
        '"kopf.zalando.org/create_fn.sub1":"{\\"started\\":\\"2026-11-25T15:08:48.000000+00:00\\"}",'
        '"kopf.zalando.org/touch-dummy":"2026-11-25T15:08:48.000000+00:00",'
        '"kopf.zalando.org/last-handled-configuration":"{\\"spec\\":{\\"field\\":\\"old\\"}}\\n",'
        '"user/annotation":"kept"}'
    )
    add('own_progress_annotations_default_prefix', body_text(plain_spec, annotations=own_default))
    own_custom = (
        '{"my-operator.example.com/create_fn":"' + OLD_PROGRESS + '",'
        '"my-operator.example.com/touch-dummy":"x",'
        '"my-operator.example.com/user-setting":"dropped by progress clear() even if unmarked",'
        '"my-operator.example.com/last-handled-configuration":"{\\"spec\\":{\\"field\\":\\"old\\"}}\\n",'
        '"user/annotation":"kept"}'
    )
    add('own_progress_custom_prefix_unmarked', body_text(plain_spec, annotations=own_custom),
        CUSTOM_PREFIX)
    add('own_progress_custom_prefix_marked', body_text(
        plain_spec, annotations=own_custom[:-1] + ',"my-operator.example.com/kopf-managed":"yes"}'),
        CUSTOM_PREFIX)
    add('custom_prefix_annotations_seen_by_default_storage',
        body_text(plain_spec, annotations=own_custom))
    add('metadata_system_fields_dropped', body_text(
        plain_spec, labels='{"app":"demo"}', annotations='{"a":"b"}',
        extra_meta=(DRS_OWNER.replace('Deployment', 'StatefulSet') +
                    ',"deletionTimestamp":"2026-01-03T00:00:00Z","deletionGracePeriodSeconds":0,'
                    '"selfLink":"/apis/kopf.dev/v1/namespaces/default/kopfexamples/x",'
                    '"generateName":"kopf-example-"')))
    add('booleans_and_nulls', body_text(
        '{"t":true,"f":false,"n":null,"arr":[true,false,null,0,""],"nested":{"n":null,"e":{}},'
        '"empty_list":[],"empty_str":""}', labels='{"flag":"true"}'))
    add('arrays_of_objects', body_text(
        '{"containers":[{"name":"main","image":"nginx:1.25","ports":[{"containerPort":80,'
        '"protocol":"TCP"}],"env":[{"name":"A","value":"1"},{"name":"B","valueFrom":'
        '{"secretKeyRef":{"name":"s","key":"k"}}}]},{"name":"sidecar","args":["--x","-y=1"]}],'
        '"matrix":[[1,2],[3,[4,{"5":6}]]]}'))
    add('duplicate_keys', '{"apiVersion":"kopf.dev/v1","kind":"KopfExample",'
                          '"spec":{"a":1,"b":2,"a":3},'
                          '"metadata":{"name":"dup","labels":{"x":"1","y":"2","x":"3"},'
                          '"annotations":{"k":"first","k":"second"}},'
                          '"spec":{"x":1,"y":2,"x":{"z":1},"y":null}}')
    add('key_order_unusual', '{"status":{"phase":"Done"},"spec":{"z":1,"a":2},'
                             '"metadata":{"annotations":{"b":"2","a":"1"},"labels":{"d":"4","c":"3"},'
                             '"name":"order"},"zzz":{"top":"level"},"kind":"KopfExample",'
                             '"aaa":[1],"apiVersion":"kopf.dev/v1"}')
    add('pretty_printed_crlf_input',
        '{\r\n  "apiVersion" : "kopf.dev/v1",\r\n  "kind": "KopfExample",\r\n'
        '  "metadata": {\r\n    "name": "pretty",\r\n    "labels": { "a" : "b" }\r\n  },\r\n'
        '  "spec": {\r\n\t"list": [ 1 , 2.0 , "three" ],\r\n\t"obj" : { }\r\n  }\r\n}\r\n')
    add('configmap_without_spec', body_text(
        None, api='v1', kind='ConfigMap', labels='{"app":"cfg"}',
        extra_top='"data":{"config.yaml":"a: 1\\nb: [2, 3]\\n","2":"two","1":"one"},'
                  '"binaryData":{"blob":"AAEC"},"immutable":true'))
    add('nested_metadata_and_status_keys_kept', body_text(
        '{"metadata":{"uid":"kept","name":"inner"},"status":{"inner":true},"apiVersion":"x","kind":"y"}'))
    add('keys_with_dots_and_slashes', body_text(
        '{"a.b/c":{"d.e":1},"example.com/key":"v","with space":"s","tab\\tkey":"t"}'))
    add('string_numbers', body_text(
        '{"s1":"1","s2":"1.0","s3":"1e-07","s4":"9007199254740993","s5":"-0","s6":"true","s7":"null"}'))
    add('large_array', body_text('{"numbers":[' + ','.join(str(i * 7919 % 1000) for i in range(500)) + ']}'))
    add('extra_fields_status_phase', body_text(
        plain_spec, status='{"phase":"Running","other":"dropped"}'),
        extra_fields=[['status', 'phase']])
    add('extra_fields_metadata_name_and_missing', body_text(
        plain_spec, labels='{"a":"b"}'),
        extra_fields=[['metadata', 'name'], ['spec', 'missing'], ['status', 'absent']])
    add('extra_fields_status_kopf_progress_cleared', body_text(
        plain_spec, status='{"kopf":{"progress":{"create_fn":{"retries":1}},"dummy":"d"}}'),
        extra_fields=[['status', 'kopf']])
    add('replicaset_owned_by_deployment', body_text(
        '{"replicas":1,"selector":{"matchLabels":{"app":"web"}}}', api='apps/v1',
        kind='ReplicaSet', extra_meta=DRS_OWNER, labels='{"app":"web"}',
        annotations='{"deployment.kubernetes.io/revision":"1",'
                    '"kopf.zalando.org/last-handled-configuration":"{\\"spec\\":{\\"replicas\\":1}}\\n"}'))
    add('replicaset_owned_by_deployment_custom_prefix', body_text(
        '{"replicas":1}', api='apps/v1', kind='ReplicaSet', extra_meta=DRS_OWNER),
        CUSTOM_PREFIX)
    add('replicaset_owned_by_other_kind', body_text(
        '{"replicas":1}', api='apps/v1', kind='ReplicaSet', extra_meta=OTHER_OWNER))
    add('deployment_with_deployment_owner', body_text(
        '{"replicas":1}', api='apps/v1', kind='Deployment', extra_meta=DRS_OWNER))
    add('annotation_values_unicode_multiline', body_text(
        plain_spec, annotations='{"note":"многострочный\\nтекст 😀","empty":"","json":"{\\"a\\":1}"}'))
    add('essence_diffbase_key_variants', body_text(
        plain_spec, annotations=(
            '{"kopf.zalando.org/last-handled-configuration-ofDRS":"{}\\n",'
            '"' + LONG_PREFIX + '/last-handled-configuration":"{}\\n",'
            '"last-handled-configuration":"kept: no prefix"}')), LONG_PREFIX)
    add('custom_prefix_many_unicode', body_text(
        '{"ключ":"значение","emoji":"🙂","ctl":"\\u0007","float":1e-07,"big":18446744073709551616}',
        labels='{"1":"a"}'), CUSTOM_PREFIX)
    return cases


def build_diffbase_vectors() -> list[dict[str, Any]]:
    vectors = []
    for case in diffbase_corpus():
        prefix = case['prefix']
        text = case['body_json']
        extra = [tuple(f) for f in case['extra_fields']] if 'extra_fields' in case else None

        storage = diffbase.AnnotationsDiffBaseStorage(prefix=prefix)
        progress_storage = progress.SmartProgressStorage(prefix=prefix)  # Kopf's default kind

        body = bodies.Body(json.loads(text))
        built = storage.build(body=body, extra_fields=extra)
        # As in kopf._core.reactor.processing: the progress storage cleans the essence.
        essence = progress_storage.clear(essence=built)

        patch = patches.Patch()
        storage.store(body=body, patch=patch, essence=essence)
        keys = list(storage.make_keys(storage.key, body=body))
        essence_json = patch.metadata.annotations[keys[0]]
        assert all(patch.metadata.annotations[k] == essence_json for k in keys)

        build_patch = patches.Patch()
        storage.store(body=body, patch=build_patch, essence=built)
        build_only_json = build_patch.metadata.annotations[keys[0]]

        # The next event: the body now carries what was patched (all non-null values).
        raw2 = json.loads(text)
        meta2 = raw2.setdefault('metadata', {})
        ann2 = meta2.setdefault('annotations', {})
        for key, val in patch.metadata.annotations.items():
            if val is not None:
                ann2[key] = val
        body2 = bodies.Body(raw2)
        fetched = storage.fetch(body=body2)
        old = progress_storage.clear(essence=fetched) if fetched is not None else None
        new = progress_storage.clear(essence=storage.build(body=body2, extra_fields=extra))
        next_diff = sorted((compact([item.operation.value, list(item.field), item.old, item.new])
                            for item in diffs.diff(old, new)))

        vector: dict[str, Any] = {
            'name': case['name'],
            'prefix': prefix,
            'body_json': text,
        }
        if extra is not None:
            vector['extra_fields'] = case['extra_fields']
        vector.update({
            'essence_json': essence_json,
            'annotation_key': keys[0],
            'annotation_keys': keys,
            'annotations_patch': patch_annotations(patch),
            'patch_json': json.dumps(patch, separators=(',', ':'), ensure_ascii=True),
            'build_only_essence_json': build_only_json,
            'stored_essence_roundtrip_json': compact(fetched),
            'next_event_diff': [json.loads(item) for item in next_diff],
        })
        vectors.append(vector)
    return vectors


# ---------------------------------------------------------------------------------------
# Progress storage.
# ---------------------------------------------------------------------------------------

T0 = datetime.datetime(2026, 11, 25, 15, 8, 48, tzinfo=UTC)
T0_TEXT = T0.isoformat()


def state_record(*, loop_time: float, purpose: str | None,
                 outcomes: list[dict[str, Any]] = ()) -> progress.ProgressRecord:
    """ Produce a record with Kopf's HandlerState: from_scratch(), with_outcome()... """
    def fn() -> progress.ProgressRecord:
        state = progression.HandlerState.from_scratch(basetime=T0, purpose=purpose)
        for spec in outcomes:
            state = state.with_outcome(outcome_of(spec))
        return state.for_storage()
    return run_at(loop_time, fn)


def outcome_of(spec: dict[str, Any]) -> execution.Outcome:
    exc: Exception | None = None
    if spec.get('exception') is not None:
        exc = Exception(spec['exception'])
    return execution.Outcome(final=spec['final'], delay=spec.get('delay'), exception=exc,
                             subrefs=spec.get('subrefs', ()))


MINIMAL_BODY = body_text('{"a":1}', system_meta=False)
DRS_BODY = body_text('{"replicas":1}', api='apps/v1', kind='ReplicaSet', extra_meta=DRS_OWNER,
                     system_meta=False)


def with_annotations(annotations: dict[str, str], base: str = MINIMAL_BODY) -> str:
    raw = json.loads(base)
    raw['metadata']['annotations'] = annotations
    return json.dumps(raw, separators=(',', ':'), ensure_ascii=False)


def build_progress_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []

    fresh = state_record(loop_time=0.0, purpose='create')
    retrying = state_record(loop_time=12.345678, purpose='update', outcomes=[
        {'final': False, 'delay': 60.0, 'exception': 'Not ready yet.'}])
    succeeded = state_record(loop_time=1.5, purpose='create', outcomes=[
        {'final': False, 'delay': 1.0, 'exception': 'Temporary.', 'subrefs': ['create_fn/sub2']},
        {'final': True, 'subrefs': ['create_fn/sub1', 'create_fn/sub2']}])
    failed = state_record(loop_time=0.000001, purpose='delete', outcomes=[
        {'final': True, 'exception': 'Ошибка: 💥 "quoted" \\ back\nnewline'}])
    no_purpose = state_record(loop_time=3600.25, purpose=None, outcomes=[
        {'final': False, 'delay': 0.0000005}])
    old_naive: progress.ProgressRecord = json.loads(
        '{"started":"2020-02-14T16:58:25.396364","stopped":"2020-02-14T16:58:25.401844",'
        '"retries":1,"success":true}')
    handwritten: progress.ProgressRecord = json.loads(
        '{"started":"2026-11-25T15:08:48.000000+00:00","delayed":"2026-11-25T15:09:48.000000+00:00",'
        '"purpose":"resume","retries":999999,"success":false,"failure":false,'
        '"message":"tab\\there \\u0000 nul, DEL \\u007f, 中文","subrefs":["a/b","a/c"]}')

    def store(name: str, handler_id: str, record: progress.ProgressRecord, *,
              prefix: str = DEFAULT_PREFIX, body: str = MINIMAL_BODY, v1: bool = True,
              verbose: bool = False, patch_json: str | None = None) -> None:
        storage = progress.AnnotationsProgressStorage(prefix=prefix, v1=v1, verbose=verbose)
        patch = patches.Patch(json.loads(patch_json) if patch_json else None)
        storage.store(key=handler_id, record=record, body=bodies.Body(json.loads(body)),
                      patch=patch)
        vector: dict[str, Any] = {
            'op': 'store', 'name': name, 'prefix': prefix, 'v1': v1, 'verbose': verbose,
            'handler_id': handler_id, 'body_json': body,
        }
        if patch_json:
            vector['initial_patch_json'] = patch_json
        vector.update({
            'record': plain(record),
            'annotations_patch': patch_annotations(patch),
            'patch_json': json.dumps(patch, separators=(',', ':'), ensure_ascii=True),
        })
        vectors.append(vector)

    store('fresh_handler', 'create_fn', fresh)
    store('retrying_handler_delayed', 'update_fn', retrying)
    store('succeeded_with_subrefs', 'create_fn', succeeded)
    store('failed_unicode_message', 'delete_fn', failed)
    store('no_purpose_sub_microsecond_delay', 'resume_fn', no_purpose)
    store('old_naive_record_restored', 'create_fn', old_naive)
    store('handwritten_record', 'create_fn/sub1', handwritten)
    store('verbose_keeps_nulls', 'create_fn', fresh, verbose=True)
    store('sub_handler_id', 'create_fn/sub1/subsub-2', retrying)
    store('odd_handler_id', 'mod.<locals>.fn/<lambda>', fresh)
    store('long_handler_id_default_prefix', 'create_fn/' + 'x' * 60, retrying)
    store('long_handler_id_v1_false', 'create_fn/' + 'x' * 60, retrying, v1=False)
    store('custom_prefix_adds_marker', 'create_fn', fresh, prefix=CUSTOM_PREFIX)
    store('custom_prefix_long_id_v1_and_v2', 'update_fn/spec.some.long.field.path.to.value/sub1', retrying,
          prefix=CUSTOM_PREFIX)
    store('custom_prefix_marker_already_in_body', 'create_fn', fresh, prefix=CUSTOM_PREFIX,
          body=with_annotations({CUSTOM_PREFIX + '/kopf-managed': 'yes'}))
    store('custom_prefix_marker_already_in_patch', 'create_fn', fresh, prefix=CUSTOM_PREFIX,
          patch_json='{"metadata":{"annotations":{"' + CUSTOM_PREFIX + '/kopf-managed":"no"}}}')
    store('kopf_dot_prefix_no_marker', 'create_fn', fresh, prefix=KOPF_DOT_PREFIX)
    store('long_prefix', 'create_fn', fresh, prefix=LONG_PREFIX)
    store('replicaset_of_deployment', 'create_fn', fresh, body=DRS_BODY)
    store('replicaset_of_deployment_custom_prefix', 'create_fn', fresh, body=DRS_BODY,
          prefix=CUSTOM_PREFIX)
    store('overwrites_value_in_patch', 'create_fn', succeeded,
          patch_json='{"metadata":{"annotations":{"kopf.zalando.org/create_fn":"old"}},'
                     '"spec":{"x":1}}')

    def purge(name: str, handler_id: str, *, annotations: dict[str, str],
              prefix: str = DEFAULT_PREFIX, base: str = MINIMAL_BODY, v1: bool = True,
              patch_json: str | None = None) -> None:
        storage = progress.AnnotationsProgressStorage(prefix=prefix, v1=v1)
        body = with_annotations(annotations, base)
        patch = patches.Patch(json.loads(patch_json) if patch_json else None)
        storage.purge(key=handler_id, body=bodies.Body(json.loads(body)), patch=patch)
        vector: dict[str, Any] = {
            'op': 'purge', 'name': name, 'prefix': prefix, 'v1': v1,
            'handler_id': handler_id, 'body_json': body,
        }
        if patch_json:
            vector['initial_patch_json'] = patch_json
        vector.update({
            'annotations_patch': patch_annotations(patch),
            'patch_json': json.dumps(patch, separators=(',', ':'), ensure_ascii=True),
        })
        vectors.append(vector)

    rec = '{"started":"2026-11-25T15:08:48.000000+00:00","retries":0}'
    long_id = 'update_fn/spec.some.long.field.path.to.value/sub1'
    storage_c = progress.AnnotationsProgressStorage(prefix=CUSTOM_PREFIX)
    long_keys = list(storage_c.make_keys(long_id))
    purge('present_in_body', 'create_fn', annotations={'kopf.zalando.org/create_fn': rec,
                                                       'other': 'x'})
    purge('absent_everywhere', 'create_fn', annotations={'other': 'x'})
    purge('only_in_patch_is_removed_from_patch', 'create_fn', annotations={},
          patch_json='{"metadata":{"annotations":{"kopf.zalando.org/create_fn":"' +
                     rec.replace('"', '\\"') + '"}}}')
    purge('only_in_patch_with_siblings', 'create_fn', annotations={},
          patch_json='{"metadata":{"annotations":{"kopf.zalando.org/create_fn":"x",'
                     '"kopf.zalando.org/other_fn":"y"}}}')
    purge('in_body_and_in_patch', 'create_fn', annotations={'kopf.zalando.org/create_fn': rec},
          patch_json='{"metadata":{"annotations":{"kopf.zalando.org/create_fn":"new"}}}')
    purge('v1_and_v2_keys_in_body', long_id, prefix=CUSTOM_PREFIX,
          annotations={k: rec for k in long_keys})
    purge('only_v1_key_in_body', long_id, prefix=CUSTOM_PREFIX,
          annotations={long_keys[-1]: rec})
    purge('only_v1_key_in_body_v1_false', long_id, prefix=CUSTOM_PREFIX, v1=False,
          annotations={long_keys[-1]: rec})
    purge('sub_handler', 'create_fn/sub1', annotations={'kopf.zalando.org/create_fn.sub1': rec})
    purge('replicaset_of_deployment', 'create_fn', base=DRS_BODY,
          annotations={'kopf.zalando.org/create_fn': rec, 'kopf.zalando.org/create_fn-ofDRS': rec})
    purge('marker_is_not_purged', 'create_fn', prefix=CUSTOM_PREFIX,
          annotations={CUSTOM_PREFIX + '/create_fn': rec, CUSTOM_PREFIX + '/kopf-managed': 'yes'})
    purge('empty_string_value_counts_as_present', 'create_fn',
          annotations={'kopf.zalando.org/create_fn': ''})

    def fetch(name: str, handler_id: str, *, annotations: dict[str, str],
              prefix: str = DEFAULT_PREFIX, base: str = MINIMAL_BODY, v1: bool = True) -> None:
        storage = progress.AnnotationsProgressStorage(prefix=prefix, v1=v1)
        body = with_annotations(annotations, base)
        record = storage.fetch(key=handler_id, body=bodies.Body(json.loads(body)))
        vectors.append({
            'op': 'fetch', 'name': name, 'prefix': prefix, 'v1': v1,
            'handler_id': handler_id, 'body_json': body,
            'record_json': compact(record),
        })

    fetch('current_format', 'create_fn', annotations={
        'kopf.zalando.org/create_fn': '{"started":"2026-11-25T15:08:48.000000+00:00",'
                                      '"purpose":"create","retries":0,"success":false,"failure":false}'})
    fetch('old_naive_timestamps', 'create_fn', annotations={
        'kopf.zalando.org/create_fn': '{"started": "2020-02-14T16:58:25.396364", "stopped": '
                                      '"2020-02-14T16:58:25.401844", "retries": 1, "success": true}'})
    fetch('timestamps_without_fraction', 'create_fn', annotations={
        'kopf.zalando.org/create_fn': '{"started":"2020-02-14T16:58:25","delayed":"2020-02-14T16:59:25Z",'
                                      '"retries":2}'})
    fetch('unknown_fields_and_order_kept', 'create_fn', annotations={
        'kopf.zalando.org/create_fn': '{"retries":1,"zzz":[1,2],"started":"2026-11-25T15:08:48.123456+00:00",'
                                      '"2":"b","1":"a","big":18446744073709551616,"f":1e-07}'})
    fetch('absent', 'create_fn', annotations={'kopf.zalando.org/other_fn': '{}'})
    fetch('only_v1_key', long_id, prefix=CUSTOM_PREFIX, annotations={
        long_keys[-1]: '{"started":"2026-11-25T15:08:48.000000+00:00","retries":5}'})
    fetch('only_v1_key_v1_false_ignored', long_id, prefix=CUSTOM_PREFIX, v1=False, annotations={
        long_keys[-1]: '{"started":"2026-11-25T15:08:48.000000+00:00","retries":5}'})
    fetch('v1_and_v2_keys_v2_wins', long_id, prefix=CUSTOM_PREFIX, annotations={
        long_keys[-1]: '{"retries":1}', long_keys[0]: '{"retries":2}'})
    fetch('v2_value_json_null_falls_back_to_v1', long_id, prefix=CUSTOM_PREFIX, annotations={
        long_keys[0]: 'null', long_keys[-1]: '{"retries":3}'})
    fetch('empty_object_value', 'create_fn', annotations={'kopf.zalando.org/create_fn': '{}'})
    fetch('sub_handler', 'create_fn/sub1', annotations={
        'kopf.zalando.org/create_fn.sub1': '{"started":"2026-11-25T15:08:48.000000+00:00"}'})
    fetch('replicaset_of_deployment_reads_marked_key_only', 'create_fn', base=DRS_BODY, annotations={
        'kopf.zalando.org/create_fn': '{"retries":1}',
        'kopf.zalando.org/create_fn-ofDRS': '{"retries":7}'})
    fetch('replicaset_of_deployment_unmarked_key_ignored', 'create_fn', base=DRS_BODY, annotations={
        'kopf.zalando.org/create_fn': '{"retries":1}'})
    fetch('unicode_message', 'create_fn', annotations={
        'kopf.zalando.org/create_fn': '{"message":"\\u041e\\u0448\\u0438\\u0431\\u043a\\u0430 '
                                      '\\ud83d\\udca5","failure":true}'})

    def touch(name: str, value: str | None, *, annotations: dict[str, str],
              prefix: str = DEFAULT_PREFIX, base: str = MINIMAL_BODY) -> None:
        storage = progress.AnnotationsProgressStorage(prefix=prefix)
        body = with_annotations(annotations, base)
        patch = patches.Patch()
        storage.touch(body=bodies.Body(json.loads(body)), patch=patch, value=value)
        vectors.append({
            'op': 'touch', 'name': name, 'prefix': prefix, 'value': value, 'body_json': body,
            'annotations_patch': patch_annotations(patch),
            'patch_json': json.dumps(patch, separators=(',', ':'), ensure_ascii=True),
        })

    touch('set_when_absent', T0_TEXT, annotations={})
    touch('unchanged_when_equal', T0_TEXT, annotations={'kopf.zalando.org/touch-dummy': T0_TEXT})
    touch('none_when_present', None, annotations={'kopf.zalando.org/touch-dummy': T0_TEXT})
    touch('none_when_absent', None, annotations={})
    touch('custom_prefix_adds_marker', 'x', annotations={}, prefix=CUSTOM_PREFIX)
    touch('custom_prefix_none_when_present', None, prefix=CUSTOM_PREFIX,
          annotations={CUSTOM_PREFIX + '/touch-dummy': 'x'})
    touch('replicaset_of_deployment', 'x', annotations={}, base=DRS_BODY)

    def clear(name: str, essence_json: str, prefix: str = DEFAULT_PREFIX) -> None:
        storage = progress.SmartProgressStorage(prefix=prefix)
        result = storage.clear(essence=json.loads(essence_json))
        vectors.append({
            'op': 'clear', 'name': name, 'prefix': prefix, 'essence_json': essence_json,
            'result_json': compact(result),
        })

    clear('removes_own_prefix_annotations',
          '{"spec":{"a":1},"metadata":{"annotations":{"kopf.zalando.org/x":"1","b":"2"}}}')
    clear('removes_empty_stanzas_and_status_progress',
          '{"spec":{},"metadata":{"annotations":{"kopf.zalando.org/x":"1"},"labels":{}},'
          '"status":{"kopf":{"progress":{"a":{}}}}}')
    clear('custom_prefix_only',
          '{"metadata":{"annotations":{"kopf.zalando.org/x":"1","my-operator.example.com/y":"2",'
          '"my-operator.example.com.other/z":"3"}}}', CUSTOM_PREFIX)
    clear('status_kopf_other_keys_kept',
          '{"status":{"kopf":{"progress":{"a":{}},"dummy":"d"},"phase":"x"}}')
    return vectors


def build_handler_state_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []
    storage = progress.AnnotationsProgressStorage()

    def stored_value(record: progress.ProgressRecord) -> str:
        patch = patches.Patch()
        storage.store(key='h', record=record, body=bodies.Body({}), patch=patch)
        return patch.metadata.annotations['kopf.zalando.org/h']

    def from_storage(name: str, record_json: str, loop_time: float = 0.0) -> None:
        def fn() -> dict[str, Any]:
            record = json.loads(record_json)
            state = progression.HandlerState.from_storage(record, basetime=T0)
            return {
                'for_storage': plain(state.for_storage()),
                'as_in_storage': plain(state.as_in_storage()),
                'changed': state.as_in_storage() != state._origin,
                'stored_value': stored_value(state.for_storage()),
            }
        result = run_at(loop_time, fn)
        vectors.append({'op': 'from_storage', 'name': name, 'basetime': T0_TEXT,
                        'loop_time': loop_time, 'record_json': record_json, **result})

    from_storage('current_format_unchanged',
                 '{"started":"2026-11-25T15:08:48.000000+00:00","purpose":"create","retries":0,'
                 '"success":false,"failure":false}')
    from_storage('old_naive_with_fraction',
                 '{"started":"2020-02-14T16:58:25.396364","stopped":"2020-02-14T16:58:25.401844",'
                 '"retries":1,"success":true}')
    from_storage('naive_without_fraction',
                 '{"started":"2020-02-14T16:58:25","delayed":"2020-02-14T16:59:25","retries":2}')
    from_storage('z_suffix_and_short_fraction',
                 '{"started":"2026-11-25T15:08:48Z","stopped":"2026-11-25T15:08:48.5Z",'
                 '"retries":1,"success":true,"failure":false}')
    from_storage('non_utc_offset_kept',
                 '{"started":"2026-11-25T17:08:48.000001+02:00","retries":0,"success":false,'
                 '"failure":false}')
    from_storage('no_started_uses_now', '{"retries":3}', loop_time=42.000042)
    from_storage('empty_record_uses_now', '{}', loop_time=0.0)
    from_storage('subrefs_unsorted_and_empty_purpose',
                 '{"started":"2026-11-25T15:08:48.000000+00:00","purpose":"","retries":1,'
                 '"success":false,"failure":false,"subrefs":["b","a/c","a"]}')
    from_storage('nulls_and_message',
                 '{"started":"2026-11-25T15:08:48.000000+00:00","stopped":null,"retries":null,'
                 '"message":"Ошибка","success":null}')
    from_storage('nanosecond_like_fraction_truncated',
                 '{"started":"2026-11-25T15:08:48.1234567+00:00","retries":0,"success":false,'
                 '"failure":false}')
    from_storage('space_separator',
                 '{"started":"2026-11-25 15:08:48.000000+00:00","retries":0,"success":false,'
                 '"failure":false}')

    def scratch(name: str, *, loop_time: float, purpose: str | None,
                outcomes: list[dict[str, Any]]) -> None:
        record = state_record(loop_time=loop_time, purpose=purpose, outcomes=outcomes)
        vectors.append({'op': 'from_scratch_with_outcomes', 'name': name, 'basetime': T0_TEXT,
                        'loop_time': loop_time, 'purpose': purpose, 'outcomes': outcomes,
                        'for_storage': plain(record), 'stored_value': stored_value(record)})

    scratch('fresh', loop_time=0.0, purpose='create', outcomes=[])
    scratch('fresh_fractional_time', loop_time=12.345678, purpose='update', outcomes=[])
    scratch('temporary_error_delay_60', loop_time=12.345678, purpose='update', outcomes=[
        {'final': False, 'delay': 60.0, 'exception': 'Not ready yet.'}])
    scratch('retry_then_success_with_subrefs', loop_time=1.5, purpose='create', outcomes=[
        {'final': False, 'delay': 1.0, 'exception': 'Temporary.', 'subrefs': ['x/sub2']},
        {'final': True, 'subrefs': ['x/sub1', 'x/sub2']}])
    scratch('permanent_failure', loop_time=0.000001, purpose='delete', outcomes=[
        {'final': True, 'exception': 'Ошибка 💥'}])
    scratch('success_without_exception', loop_time=86400.0, purpose=None, outcomes=[
        {'final': True}])
    scratch('sub_microsecond_delay', loop_time=0.0, purpose='resume', outcomes=[
        {'final': False, 'delay': 0.0000004}, {'final': False, 'delay': 0.0000006}])
    return vectors


# ---------------------------------------------------------------------------------------
# Keys.
# ---------------------------------------------------------------------------------------

def handler_ids() -> list[str]:
    ids = [
        'create_fn', 'create_fn/sub1', 'create_fn/sub1/subsub-2', 'update_fn/spec.field',
        '<lambda>', 'mod.<locals>.fn', 'module.create_fn/<lambda>', '__main__.create_fn',
        'a', 'touch-dummy', 'last-handled-configuration', 'kopf-managed',
        'создать_fn', '处理器/子', 'fn_😀', 'café/naïve', 'UPPER/lower', 'trailing/', '/leading',
        'dots..and//slashes', 'spaces in id', 'ends-with-dash-', 'ends.with.dot.',
    ]
    for n in (10, 30, 37, 38, 39, 40, 50, 55, 56, 57, 62, 63, 64, 65, 100, 150, 200):
        ids.append(('h' * n)[:n])
        ids.append(('create_fn/' + 'sub/' * 60)[:n])
        ids.append(('ж' * n)[:n])
    ids.append('update_fn/' + 'x' * 52 + '/<lambda>')
    ids.append('x' * 62 + '/')
    ids.append('x' * 62 + '/a')
    ids.append('x' * 40 + '<' * 30)
    # NB: a 4-byte digest gives 6 base64 chars + "==", the 6th char is always one of
    # "AQgw", so rstrip('=-.') only ever strips the "==" padding: suffixes are 7 chars.
    return ids


def build_key_vectors() -> list[dict[str, Any]]:
    vectors = []
    for prefix in (DEFAULT_PREFIX, CUSTOM_PREFIX, LONG_PREFIX, HUGE_PREFIX):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            storage_v1 = progress.AnnotationsProgressStorage(prefix=prefix, v1=True)
            storage_v2 = progress.AnnotationsProgressStorage(prefix=prefix, v1=False)
        warned = sorted({str(w.message) for w in caught})
        for handler_id in handler_ids():
            vector = {
                'prefix': prefix,
                'name': handler_id,
                'v1': storage_v1.make_v1_key(handler_id),
                'v2': storage_v1.make_v2_key(handler_id),
                'suffix': storage_v1.make_suffix(handler_id),
                'safe_key': storage_v1.make_safe_key(handler_id),
                'keys_v1_true': list(storage_v1.make_keys(handler_id)),
                'keys_v1_false': list(storage_v2.make_keys(handler_id)),
            }
            if warned:
                vector['prefix_warnings'] = warned
            vectors.append(vector)
    return vectors


def build_mark_key_vectors() -> list[dict[str, Any]]:
    vectors = []
    convention = conventions.StorageKeyFormingConvention(prefix=DEFAULT_PREFIX, v1=True)
    bodies_texts = {
        'replicaset_owned_by_deployment': DRS_BODY,
        'replicaset_owned_by_other_kind': body_text('{}', api='apps/v1', kind='ReplicaSet',
                                                    extra_meta=OTHER_OWNER, system_meta=False),
        'replicaset_owned_by_both': body_text(
            '{}', api='apps/v1', kind='ReplicaSet', system_meta=False,
            extra_meta=OTHER_OWNER[:-1] + ',' + DRS_OWNER.split('[', 1)[1]),
        'replicaset_without_owners': body_text('{}', api='apps/v1', kind='ReplicaSet',
                                               system_meta=False),
        'deployment_owned_by_deployment': body_text('{}', api='apps/v1', kind='Deployment',
                                                    extra_meta=DRS_OWNER, system_meta=False),
        'custom_kind_owned_by_deployment': body_text('{}', extra_meta=DRS_OWNER, system_meta=False),
    }
    for name, text in bodies_texts.items():
        body = bodies.Body(json.loads(text))
        for key in ('create_fn', 'last-handled-configuration', 'x' * 70):
            vectors.append({
                'name': name, 'body_json': text, 'key': key,
                'marked': convention.mark_key(key, body=body),
                'keys': list(convention.make_keys(key, body=body)),
            })
    return vectors


# ---------------------------------------------------------------------------------------
# Marker.
# ---------------------------------------------------------------------------------------

def build_marker() -> dict[str, Any]:
    marking = conventions.StorageKeyMarkingConvention
    known_markers = sorted(getattr(marking, '_StorageKeyMarkingConvention__KNOWN_MARKERS'))
    known_prefixes = sorted(getattr(marking, '_StorageKeyMarkingConvention__KNOWN_PREFIXES'))

    stores = []
    for prefix, annotations, patch_json in [
        (CUSTOM_PREFIX, {}, None),
        (CUSTOM_PREFIX, {CUSTOM_PREFIX + '/kopf-managed': 'yes'}, None),
        (CUSTOM_PREFIX, {CUSTOM_PREFIX + '/kopf-managed': 'no'}, None),
        (CUSTOM_PREFIX, {}, '{"metadata":{"annotations":{"' + CUSTOM_PREFIX + '/kopf-managed":null}}}'),
        (DEFAULT_PREFIX, {}, None),
        (KOPF_DOT_PREFIX, {}, None),
        ('kopfx.example.com', {}, None),
        ('kopf', {}, None),
        ('zalando.org', {}, None),
        (LONG_PREFIX, {}, None),
    ]:
        storage = progress.AnnotationsProgressStorage(prefix=prefix)
        body = with_annotations(annotations)
        patch = patches.Patch(json.loads(patch_json) if patch_json else None)
        storage._store_marker(prefix=prefix, patch=patch, body=bodies.Body(json.loads(body)))
        entry: dict[str, Any] = {'prefix': prefix, 'body_json': body}
        if patch_json:
            entry['initial_patch_json'] = patch_json
        entry['patch_json'] = json.dumps(patch, separators=(',', ':'), ensure_ascii=True)
        stores.append(entry)

    detections = []
    detector = progress.AnnotationsProgressStorage(prefix=CUSTOM_PREFIX)
    for keys in [
        [],
        ['kopf.zalando.org/create_fn'],
        ['a.kopf.zalando.org/x', 'kopf.zalando.org.evil.com/x', 'xkopf.zalando.org/y'],
        ['other.example.org/kopf-managed', 'other.example.org/create_fn'],
        ['other.example.org/kopf-managed-not', 'kopf-managed', 'a/b/kopf-managed'],
        ['x/kopf-managed', 'y/kopf-managed', 'z/create_fn'],
        ['/kopf-managed', 'KOPF.ZALANDO.ORG/x', 'kopf.zalando.org/'],
        [CUSTOM_PREFIX + '/kopf-managed', CUSTOM_PREFIX + '/create_fn'],
    ]:
        detected = detector._detect_marked_prefixes(keys)
        detections.append({'annotation_keys': keys, 'marked_prefixes': sorted(detected)})

    return {
        'name': known_markers[0] if len(known_markers) == 1 else known_markers,
        'value': json.loads(stores[0]['patch_json'])['metadata']['annotations'][
            CUSTOM_PREFIX + '/kopf-managed'],
        'example_prefix': CUSTOM_PREFIX,
        'example_key': list(json.loads(stores[0]['patch_json'])['metadata']['annotations'])[0],
        'known_markers': known_markers,
        'known_prefixes': known_prefixes,
        'store_marker': stores,
        'detect_marked_prefixes': detections,
    }


# ---------------------------------------------------------------------------------------
# Peering (the keep-alive record format).
# ---------------------------------------------------------------------------------------

def build_peering_vectors() -> list[dict[str, Any]]:
    vectors = []
    for lastseen, priority, lifetime in [
        ('2026-11-25T15:08:48.123456+00:00', 0, 60),
        ('2026-11-25T15:08:48.000000+00:00', 100, 60),
        ('2026-11-25T15:08:48Z', -5, 30),
        ('2026-11-25T15:08:48.5Z', '10', '90'),
        ('2020-02-14T16:58:25.396364', 0, 60),
        ('2026-11-25T17:08:48+02:00', 0, 60.9),
    ]:
        peer = peering.Peer(identity=peering.Identity('user@host/20261125150848/abc'),
                            priority=priority, lifetime=lifetime, lastseen=lastseen)
        vectors.append({
            'lastseen': lastseen, 'priority': priority, 'lifetime': lifetime,
            'as_dict': peer.as_dict(),
            'as_dict_json': json.dumps(peer.as_dict(), separators=(',', ':')),
        })
    return vectors


# ---------------------------------------------------------------------------------------

def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, '..', 'vectors', 'kopf-state.json')
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else default_out)

    version = metadata.version('kopf')
    if version != PINNED_VERSION:
        sys.exit(f"kopf=={version} is installed, but the vectors are pinned to {PINNED_VERSION}")

    dstorage = diffbase.AnnotationsDiffBaseStorage()
    pstorage = progress.AnnotationsProgressStorage()
    doc = {
        'kopf_version': version,
        'defaults': {
            'prefix': dstorage.prefix,
            'diffbase_key': dstorage.key,
            'touch_key': pstorage.touch_key,
            'v1': dstorage.v1,
            'progress_verbose': pstorage.verbose,
            'diffbase_annotation': list(dstorage.make_keys(dstorage.key))[0],
        },
        'finalizer': configuration.PersistenceSettings().finalizer,
        'marker': build_marker(),
        'diffbase': build_diffbase_vectors(),
        'progress': build_progress_vectors(),
        'handler_states': build_handler_state_vectors(),
        'keys': build_key_vectors(),
        'mark_key': build_mark_key_vectors(),
        'peering': build_peering_vectors(),
    }
    text = json.dumps(doc, indent=1, ensure_ascii=True) + '\n'
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + '.tmp'
    with open(tmp, 'w', encoding='ascii', newline='\n') as f:
        f.write(text)
    os.replace(tmp, out)
    print(f"wrote {out}: {len(doc['diffbase'])} diffbase, {len(doc['progress'])} progress, "
          f"{len(doc['handler_states'])} handler_states, {len(doc['keys'])} keys vectors",
          file=sys.stderr)


if __name__ == '__main__':
    main()
