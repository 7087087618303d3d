"""DELETE through the real client: immediate removal where Kubernetes forces grace 0, graceful
deletion of running pods, DeleteOptions (body and query), preconditions, 404, deletecollection."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from kubernetes.client import V1DeleteOptions, V1Preconditions

from helpers import LONG_RUN, NS, UNSCHEDULABLE, new_world, pod_manifest, rejected, status_of

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def exists(api, name: str) -> bool:
    return name in [p.metadata.name for p in api.list_namespaced_pod(NS).items]


def started(annotations: dict, run_for: float = 5, **spec):
    """(cluster, api), ``run_for`` virtual seconds after pod "web" was created with ``annotations``."""
    cluster, api = new_world()

    def main():
        api.create_namespaced_pod(NS, pod_manifest("web", annotations=annotations, **spec))
        cluster.sleep(run_for)

    cluster.run(main)
    return cluster, api


@pytest.fixture
def running():
    cluster, api = started(LONG_RUN)
    assert cluster.run(api.read_namespaced_pod, "web", NS).status.phase == "Running"
    return cluster, api


def test_a_pod_never_bound_to_a_node_is_removed_at_once():
    cluster, api = started(UNSCHEDULABLE)

    def main():
        answered = api.delete_namespaced_pod("web", NS)
        return answered, exists(api, "web")

    answered, still_there = cluster.run(main)
    assert answered.metadata.name == "web" and not still_there


def test_a_running_pod_is_marked_for_graceful_deletion(running):
    cluster, api = running

    def main():
        now = cluster.now
        answered, code, _ = api.delete_namespaced_pod_with_http_info("web", NS)
        return now, answered, code, api.read_namespaced_pod("web", NS)

    now, answered, code, still = cluster.run(main)
    assert code == 200
    assert answered.metadata.deletion_timestamp == EPOCH + timedelta(seconds=now + 30)
    assert answered.metadata.deletion_grace_period_seconds == 30
    assert still.metadata.deletion_timestamp == answered.metadata.deletion_timestamp


def test_a_gracefully_deleted_pod_is_gone_once_its_container_stops(running):
    cluster, api = running   # the container stops 1 s after SIGTERM (the model's default)

    def main():
        api.delete_namespaced_pod("web", NS)
        cluster.sleep(0.5)
        halfway = exists(api, "web")
        cluster.sleep(1)
        return halfway, exists(api, "web")

    assert cluster.run(main) == (True, False)


def test_a_container_slower_than_the_grace_period_is_killed_when_it_ends():
    cluster, api = started({**LONG_RUN, "kubesim.io/stop-seconds": "100"})

    def main():
        api.delete_namespaced_pod("web", NS, grace_period_seconds=10)
        cluster.sleep(9.5)
        before = exists(api, "web")
        cluster.sleep(1)
        return before, exists(api, "web")

    assert cluster.run(main) == (True, False)


def test_grace_period_zero_removes_a_running_pod_at_once(running):
    cluster, api = running
    assert cluster.run(lambda: (api.delete_namespaced_pod("web", NS, grace_period_seconds=0),
                                exists(api, "web"))[1]) is False


def test_grace_period_in_a_delete_options_body_is_honoured(running):
    cluster, api = running
    assert cluster.run(lambda: (api.delete_namespaced_pod("web", NS, body=V1DeleteOptions(grace_period_seconds=0)),
                                exists(api, "web"))[1]) is False


def test_a_terminal_pod_is_removed_at_once():
    cluster, api = started({"kubesim.io/run-seconds": "1"}, restartPolicy="Never")
    assert cluster.run(api.read_namespaced_pod, "web", NS).status.phase == "Succeeded"
    answered, gone = cluster.run(lambda: (api.delete_namespaced_pod("web", NS), not exists(api, "web")))
    assert gone and answered.metadata.deletion_grace_period_seconds in (None, 0)


def test_deleting_a_terminating_pod_again_keeps_its_deadline(running):
    cluster, api = running

    def main():
        first = api.delete_namespaced_pod("web", NS)
        return first, api.delete_namespaced_pod("web", NS)

    first, second = cluster.run(main)
    assert second.metadata.deletion_timestamp == first.metadata.deletion_timestamp


def test_uid_precondition_mismatch_is_409_and_keeps_the_pod(running):
    cluster, api = running
    uid = cluster.run(api.read_namespaced_pod, "web", NS).metadata.uid
    options = V1DeleteOptions(preconditions=V1Preconditions(uid="not-the-uid"))
    error = cluster.run(lambda: rejected(api.delete_namespaced_pod, "web", NS, body=options))
    assert error.status == 409
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: '
                   f"not-the-uid, UID in object meta: {uid}",
        "reason": "Conflict", "details": {"name": "web", "kind": "pods"}, "code": 409}
    assert cluster.run(exists, api, "web")


def test_matching_uid_precondition_deletes(running):
    cluster, api = running
    uid = cluster.run(api.read_namespaced_pod, "web", NS).metadata.uid
    options = V1DeleteOptions(grace_period_seconds=0, preconditions=V1Preconditions(uid=uid))
    assert cluster.run(lambda: (api.delete_namespaced_pod("web", NS, body=options), exists(api, "web"))[1]) is False


def test_resource_version_precondition_mismatch_is_409(running):
    cluster, api = running
    options = V1DeleteOptions(preconditions=V1Preconditions(resource_version="1"))
    error = cluster.run(lambda: rejected(api.delete_namespaced_pod, "web", NS, body=options))
    assert error.status == 409 and "Precondition failed: ResourceVersion in precondition: 1," in status_of(error)["message"]


def test_deleting_a_missing_pod_is_404():
    cluster, api = new_world()
    error = cluster.run(rejected, api.delete_namespaced_pod, "ghost", NS)
    assert error.status == 404
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "ghost" not found', "reason": "NotFound",
        "details": {"name": "ghost", "kind": "pods"}, "code": 404}


def test_unknown_propagation_policy_is_422_on_delete_options(running):
    cluster, api = running
    error = cluster.run(lambda: rejected(api.delete_namespaced_pod, "web", NS, propagation_policy="Sideways"))
    assert error.status == 422
    assert status_of(error)["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": '
        'supported values: "Foreground", "Background", "Orphan", "nil"')


def test_dry_run_delete_changes_nothing(running):
    cluster, api = running

    def main():
        answered = api.delete_namespaced_pod("web", NS, dry_run="All", grace_period_seconds=0)
        return answered, api.read_namespaced_pod("web", NS)

    answered, still = cluster.run(main)
    assert answered.metadata.name == "web" and still.metadata.deletion_timestamp is None


def test_delete_collection_removes_only_what_the_selector_matches():
    cluster, api = new_world()

    def main():
        for name, app in (("a", "web"), ("b", "db"), ("c", "web")):
            api.create_namespaced_pod(NS, pod_manifest(name, labels={"app": app}, annotations=UNSCHEDULABLE))
        cluster.sleep(1)
        api.delete_collection_namespaced_pod(NS, label_selector="app=web")
        return [p.metadata.name for p in api.list_namespaced_pod(NS).items]

    assert cluster.run(main) == ["b"]
