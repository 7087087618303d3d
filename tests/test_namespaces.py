"""Namespace lifecycle through the real client: a DELETE marks the namespace Terminating, the
namespace controller deletes its pods gracefully and its Events, the namespace goes when it is
empty; creates meanwhile get NamespaceLifecycle's 403, and the immortal namespaces refuse to go."""

from __future__ import annotations

import pytest
from kubernetes import watch

from helpers import LONG_RUN, as_dict, new_world, pod_manifest, rejected, status_of


STOPS_SLOWLY = {**LONG_RUN, "kubesim.io/stop-seconds": "10"}   # 10 s from SIGTERM to exit


def namespaced_world():
    return new_world(namespaces=("default", "kube-system", "kube-public", "team"))


def namespace_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_immortal_namespaces_refuse_deletion_with_403(name):
    cluster, api = namespaced_world()
    error = cluster.run(rejected, api.delete_namespace, name)
    assert error.status == 403
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'namespaces "{name}" is forbidden: this namespace may not be deleted',
        "reason": "Forbidden", "details": {"name": name, "kind": "namespaces"}, "code": 403}
    assert cluster.run(api.read_namespace, name).status.phase == "Active"


def test_deleting_a_namespace_terminates_its_pods_gracefully_then_removes_it():
    cluster, api = namespaced_world()

    def main():
        for name in ("a", "b"):
            api.create_namespaced_pod("team", pod_manifest(name, annotations=STOPS_SLOWLY,
                                                           terminationGracePeriodSeconds=20))
        api.create_namespaced_pod("default", pod_manifest("elsewhere", annotations=LONG_RUN))
        cluster.sleep(5)
        api.delete_namespace("team")
        answered = api.read_namespace("team")
        cluster.sleep(1)
        during = (api.read_namespace("team"), api.list_namespaced_pod("team").items)
        cluster.sleep(30)
        return answered, during

    answered, (namespace, pods) = cluster.run(main)
    assert answered.metadata.deletion_timestamp is not None and answered.status.phase == "Terminating"
    assert namespace.status.phase == "Terminating"
    remaining = {c.type: (c.status, c.reason, c.message) for c in namespace.status.conditions}
    assert remaining["NamespaceContentRemaining"] == (
        "True", "SomeResourcesRemain", "Some resources are remaining: pods has 2 resource instances")
    assert {p.metadata.name: p.metadata.deletion_grace_period_seconds for p in pods} == {"a": 20, "b": 20}
    assert cluster.pods("team") == [] and cluster.server.stores["namespaces"].get("", "team") is None
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["elsewhere"]   # other namespaces untouched
    # the pods went through their kubelets' termination: Failed (SIGTERM) before they were removed
    ends = [t for t in cluster.trace if t[3] == "Pod" and t[4] == "team" and t[2] == "DELETED"]
    assert [t[6] for t in ends] == ["Failed", "Failed"]
    assert [t[2] for t in cluster.trace if t[3] == "Namespace" and t[5] == "team"][-1] == "DELETED"


def test_a_watch_sees_the_namespace_go_terminating_then_deleted():
    cluster, api = namespaced_world()

    def main():
        api.create_namespaced_pod("team", pod_manifest("a", annotations=LONG_RUN))
        cluster.sleep(3)
        rv = api.read_namespace("team").metadata.resource_version
        cluster.spawn(lambda: (cluster.sleep(1), api.delete_namespace("team")))
        seen = []
        for event in watch.Watch().stream(api.list_namespace, field_selector="metadata.name=team",
                                          resource_version=rv, timeout_seconds=60):
            seen.append((event["type"], event["object"].status.phase))
            if event["type"] == "DELETED":
                break
        return seen

    seen = cluster.run(main)
    assert seen[0] == ("MODIFIED", "Terminating") and seen[-1][0] == "DELETED"
    assert {phase for _, phase in seen} == {"Terminating"}


def test_creates_in_a_terminating_namespace_get_namespace_lifecycle_s_403():
    cluster, api = namespaced_world()

    def main():
        api.create_namespaced_pod("team", pod_manifest("a", annotations=LONG_RUN))
        cluster.sleep(3)
        api.delete_namespace("team")
        named = rejected(api.create_namespaced_pod, "team", pod_manifest("late"))
        generated = rejected(api.create_namespaced_pod, "team", pod_manifest(None) | {
            "metadata": {"generateName": "task-"}})
        return named, generated

    named, generated = cluster.run(main)
    assert named.status == 403 and status_of(named) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "late" is forbidden: unable to create new content in namespace team because it is '
                   'being terminated',
        "reason": "Forbidden",
        "details": {"name": "late", "kind": "pods", "causes": [
            {"reason": "NamespaceTerminating", "message": "namespace team is being terminated",
             "field": "metadata.namespace"}]},
        "code": 403}
    assert status_of(generated)["details"]["name"] == "task-"   # admission runs before names are generated
    assert [p["metadata"]["name"] for p in cluster.pods("team")] in ([], ["a"])


def test_events_of_the_namespace_are_deleted_and_none_recorded_while_it_terminates():
    cluster, api = namespaced_world()

    def main():
        api.create_namespaced_pod("team", pod_manifest("stuck", annotations={"kubesim.io/unschedulable": "true"}))
        api.create_namespaced_pod("team", pod_manifest("running", annotations=LONG_RUN,
                                                       terminationGracePeriodSeconds=5))
        cluster.sleep(3)
        before = len(api.list_namespaced_event("team").items)
        api.delete_namespace("team")
        cluster.sleep(1)
        return before, len(api.list_namespaced_event("team").items)

    before, during = cluster.run(main)
    assert before >= 1 and during == 0


def test_a_namespace_created_again_after_deletion_is_a_new_one():
    cluster, api = namespaced_world()

    def main():
        first = api.read_namespace("team").metadata.uid
        api.delete_namespace("team")
        cluster.sleep(1)
        again = api.create_namespace(namespace_body("team"))
        api.create_namespaced_pod("team", pod_manifest("fresh"))
        return first, again

    first, again = cluster.run(main)
    assert again.metadata.uid != first and again.status.phase == "Active"
    assert as_dict(api, again)["spec"] == {"finalizers": ["kubernetes"]}


def test_a_pod_on_a_lost_node_keeps_its_namespace_terminating():
    cluster, api = new_world(nodes=1, namespaces=("default", "team"))

    def main():
        api.create_namespaced_pod("team", pod_manifest("a", annotations=LONG_RUN))
        cluster.sleep(3)
        cluster.lose_node("node-1")
        api.delete_namespace("team")
        cluster.sleep(600)
        held = api.read_namespace("team").status.phase
        cluster.restore_node("node-1")
        cluster.sleep(60)
        return held

    assert cluster.run(main) == "Terminating"
    assert cluster.server.stores["namespaces"].get("", "team") is None


def test_updates_keep_a_namespace_s_phase_and_finalizers():
    cluster, api = namespaced_world()
    changed = cluster.run(api.patch_namespace, "team", {"spec": {"finalizers": []}, "status": {"phase": "Gone"},
                                                        "metadata": {"labels": {"tier": "x"}}})
    assert changed.spec.finalizers == ["kubernetes"] and changed.status.phase == "Active"
    assert changed.metadata.labels["tier"] == "x"

