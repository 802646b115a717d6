/**
 * Indexes: a `Team` (`teams.example.kopf-ts.dev`) reports its members, which are the
 * ConfigMaps labelled `team=<team name>` in the namespace. Instead of listing ConfigMaps on
 * every run, the operator keeps an index of them from its watch stream, and the team's timer
 * reads it. At start-up no handler runs before the index is complete.
 *
 *   kopf-ts generate examples/index-operator.ts | kubectl apply -f -   # the CRD (and RBAC)
 *   kopf-ts run examples/index-operator.ts -n default
 *   kubectl create configmap ann && kubectl label configmap ann team=red
 *   kubectl apply -f - <<< '{"apiVersion": "example.kopf-ts.dev/v1", "kind": "Team",
 *     "metadata": {"name": "red"}, "spec": {}}'
 *   kubectl get team red -o jsonpath='{.status.roster}'   # {"members":["ann"]}
 */
import { defineResource, on, PRESENT, type ObjectContext, type SpawningContext } from 'kopf-ts';

export const Team = defineResource<Record<string, never>, { roster?: { members: string[] } }>({
  group: 'example.kopf-ts.dev',
  version: 'v1',
  kind: 'Team',
  plural: 'teams',
  scope: 'Namespaced',
});

/** ConfigMaps by [namespace, team]: the value is the ConfigMap's name. */
on.index(
  'configmaps',
  function members({ namespace, name, labels }: ObjectContext) {
    return new Map([[[namespace ?? '', labels.team ?? ''], name]]);
  },
  { labels: { team: PRESENT } },
);

/** Every 10 s, the team's members from the index: no API call. */
on.timer(
  Team,
  function roster({ namespace, name, indexes }: SpawningContext) {
    const members = indexes.get<string>('members').get([namespace ?? '', name]);
    return { members: members.toSorted() };
  },
  { interval: 10 },
);
