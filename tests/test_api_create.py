"""POST /api/v1/namespaces/{ns}/pods through the real client: what the server fills in, and the
Status bodies of every refusal (409, 400, 404, 422, 500), each leaving the store untouched."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from helpers import NS, UNSCHEDULABLE, as_dict, new_world, pod_manifest, rejected, state, status_of
from helpers import world  # noqa: F401  (the fixture)

RFC1123_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                     "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                     "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_create_answers_201_with_the_stored_pod(world):
    cluster, api = world
    _, code, _ = cluster.run(api.create_namespaced_pod_with_http_info, NS, pod_manifest("web"))
    assert code == 201


def test_create_fills_uid_timestamp_resource_version_and_namespace(world):
    cluster, api = world
    before = cluster.run(api.list_namespaced_pod, NS).metadata.resource_version
    meta = cluster.run(api.create_namespaced_pod, NS, pod_manifest("web")).metadata
    assert UUID.fullmatch(meta.uid)
    assert meta.creation_timestamp == datetime(2024, 1, 1, tzinfo=timezone.utc)  # virtual time zero
    assert int(meta.resource_version) > int(before)
    assert meta.namespace == NS


def test_create_applies_pod_defaults_and_starts_pending(world):
    cluster, api = world
    pod = as_dict(api, cluster.run(api.create_namespaced_pod, NS, pod_manifest("web")))
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["dnsPolicy"],
            spec["schedulerName"]) == ("Always", 30, "ClusterFirst", "default-scheduler")
    assert (container["imagePullPolicy"], container["terminationMessagePath"]) == \
        ("IfNotPresent", "/dev/termination-log")
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_each_pod_gets_its_own_uid(world):
    cluster, api = world
    first = cluster.run(api.create_namespaced_pod, NS, pod_manifest("a"))
    second = cluster.run(api.create_namespaced_pod, NS, pod_manifest("b"))
    assert first.metadata.uid != second.metadata.uid


def test_generate_name_appends_five_random_characters(world):
    cluster, api = world
    body = pod_manifest(None)
    body["metadata"]["generateName"] = "task-"
    made = [cluster.run(api.create_namespaced_pod, NS, body).metadata for _ in range(2)]
    assert all(re.fullmatch(r"task-[bcdfghjklmnpqrstvwxz2456789]{5}", m.name) for m in made)
    assert made[0].name != made[1].name and made[0].generate_name == "task-"


def test_duplicate_name_is_409_already_exists(world):
    cluster, api = world
    cluster.run(api.create_namespaced_pod, NS, pod_manifest("web"))
    error = cluster.run(rejected, api.create_namespaced_pod, NS, pod_manifest("web"))
    assert error.status == 409
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "web" already exists', "reason": "AlreadyExists",
        "details": {"name": "web", "kind": "pods"}, "code": 409}


def test_body_namespace_other_than_the_url_is_400(world):
    cluster, api = world
    body = pod_manifest("web")
    body["metadata"]["namespace"] = "kube-system"
    error = cluster.run(rejected, api.create_namespaced_pod, NS, body)
    assert error.status == 400
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the namespace of the provided object does not match the namespace sent on the request",
        "reason": "BadRequest", "code": 400}


def test_create_in_a_missing_namespace_is_404_for_the_namespace(world):
    cluster, api = world
    error = cluster.run(rejected, api.create_namespaced_pod, "nowhere", pod_manifest("web"))
    assert error.status == 404
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'namespaces "nowhere" not found', "reason": "NotFound",
        "details": {"name": "nowhere", "kind": "namespaces"}, "code": 404}


def test_uppercase_name_is_422_invalid_with_its_cause(world):
    cluster, api = world
    error = cluster.run(rejected, api.create_namespaced_pod, NS, pod_manifest("Web"))
    assert error.status == 422
    cause = f'Invalid value: "Web": {RFC1123_SUBDOMAIN}'
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Pod "Web" is invalid: metadata.name: {cause}', "reason": "Invalid",
        "details": {"name": "Web", "kind": "Pod", "causes": [
            {"reason": "FieldValueInvalid", "message": cause, "field": "metadata.name"}]},
        "code": 422}


def test_name_longer_than_253_characters_is_422(world):
    cluster, api = world
    name = "x" * 254
    error = cluster.run(rejected, api.create_namespaced_pod, NS, pod_manifest(name))
    assert status_of(error)["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.name",
        "message": f'Invalid value: "{name}": must be no more than 253 characters'}]


def test_bad_label_key_and_value_are_two_causes_in_one_bracketed_message(world):
    cluster, api = world
    error = cluster.run(rejected, api.create_namespaced_pod, NS,
                        pod_manifest("web", labels={"bad key": "ok", "tier": "-bad"}))
    body = status_of(error)
    assert error.status == 422 and body["reason"] == "Invalid"
    assert [(c["field"], c["message"].split(":")[1]) for c in body["details"]["causes"]] == [
        ("metadata.labels", ' "bad key"'), ("metadata.labels", ' "-bad"')]
    assert body["message"].startswith('Pod "web" is invalid: [metadata.labels: Invalid value: "bad key": ')
    assert ', metadata.labels: Invalid value: "-bad": a valid label must be' in body["message"]


def test_pod_without_containers_is_422_required(world):
    cluster, api = world
    error = cluster.run(rejected, api.create_namespaced_pod, NS, pod_manifest("web", containers=[]))
    body = status_of(error)
    assert body["message"] == 'Pod "web" is invalid: spec.containers: Required value'
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}]


def test_bad_generate_name_is_reported_for_both_the_prefix_and_the_name(world):
    cluster, api = world
    body = pod_manifest(None)
    body["metadata"]["generateName"] = "Task-"
    error = cluster.run(rejected, api.create_namespaced_pod, NS, body)
    causes = status_of(error)["details"]["causes"]
    assert [c["field"] for c in causes] == ["metadata.generateName", "metadata.name"]
    assert causes[0]["message"] == f'Invalid value: "Task-": {RFC1123_SUBDOMAIN}'


def test_resource_version_on_create_is_refused_like_etcd_does(world):
    cluster, api = world
    body = pod_manifest("web")
    body["metadata"]["resourceVersion"] = "5"
    error = cluster.run(rejected, api.create_namespaced_pod, NS, body)
    assert error.status == 500
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "resourceVersion should not be set on objects to be created", "code": 500}


def test_dry_run_create_validates_but_stores_nothing(world):
    cluster, api = world
    before = cluster.run(state, api)
    pod, code, _ = cluster.run(lambda: api.create_namespaced_pod_with_http_info(
        NS, pod_manifest("web"), dry_run="All"))
    assert (code, pod.metadata.name, pod.metadata.resource_version) == (201, "web", None)
    assert cluster.run(state, api) == before


REFUSED = {
    "duplicate": (NS, pod_manifest("existing")),
    "namespace-mismatch": (NS, {**pod_manifest("web"), "metadata": {"name": "web", "namespace": "kube-system"}}),
    "missing-namespace": ("nowhere", pod_manifest("web")),
    "bad-name": (NS, pod_manifest("Web")),
    "bad-label": (NS, pod_manifest("web", labels={"k": "no spaces"})),
    "no-containers": (NS, pod_manifest("web", containers=[])),
    "resource-version": (NS, {**pod_manifest("web"), "metadata": {"name": "web", "resourceVersion": "9"}}),
}


@pytest.mark.parametrize("namespace, body", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_create_leaves_the_store_and_revision_unchanged(namespace, body):
    cluster, api = new_world()

    def main():
        api.create_namespaced_pod(NS, pod_manifest("existing", annotations=UNSCHEDULABLE))
        cluster.sleep(1)  # let the scheduler settle, so only the refused request could change anything
        before = state(api)
        rejected(api.create_namespaced_pod, namespace, body)
        return before, state(api)

    before, after = cluster.run(main)
    assert after == before
