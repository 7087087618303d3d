"""Edge behaviours found in review: finalizers, default tolerations, urllib3 error wording,
503 details, query booleans in the gateway, and the too-new-resourceVersion wait."""

import json

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from fakecluster import ErrorRule, FakeCluster, Faults, Outage
from fakecluster.api.server import Request
from fakecluster.doors.gateway import classify
from helpers import NS, UNSCHEDULABLE, new_world, pod_manifest


def test_removing_the_last_finalizer_of_a_deleted_pod_removes_it():
    cluster, api = new_world()
    pod = pod_manifest("kept", annotations=UNSCHEDULABLE)
    pod["metadata"]["finalizers"] = ["example.com/keep"]

    def scenario():
        api.create_namespaced_pod(NS, pod)
        deleted = api.delete_namespaced_pod("kept", NS)
        still_there = cluster.pod(NS, "kept") is not None
        api.patch_namespaced_pod("kept", NS, [{"op": "remove", "path": "/metadata/finalizers"}])
        return deleted.metadata.deletion_timestamp, still_there, cluster.pod(NS, "kept")

    marked, still_there, after = cluster.run(scenario)
    assert marked is not None and still_there
    assert after is None


def test_default_tolerations_are_added_next_to_the_pods_own():
    cluster, api = new_world()
    pod = pod_manifest("tolerant")
    pod["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}]
    created = cluster.run(api.create_namespaced_pod, NS, pod)
    keys = sorted(t.key for t in created.spec.tolerations)
    assert keys == ["dedicated", "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]


def test_a_pod_already_tolerating_unreachable_keeps_its_own_seconds():
    cluster, api = new_world()
    pod = pod_manifest("patient")
    pod["spec"]["tolerations"] = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 3600}]
    created = cluster.run(api.create_namespaced_pod, NS, pod)
    unreachable = [t for t in created.spec.tolerations if t.key == "node.kubernetes.io/unreachable"]
    assert [t.toleration_seconds for t in unreachable] == [3600]


def test_refused_connections_read_like_urllib3_over_a_socket():
    cluster = FakeCluster(faults=Faults(outages=[Outage(0, 100, "refused")]))
    from kubernetes import client
    api = client.CoreV1Api(cluster.api_client())
    with pytest.raises(urllib3.exceptions.MaxRetryError) as caught:
        cluster.run(api.list_namespaced_pod, NS)
    message = str(caught.value)
    assert message.startswith("HTTPSConnectionPool(host='kubesim.local', port=443): Max retries exceeded "
                              "with url: /api/v1/namespaces/default/pods")
    assert "Connection refused" in message


def test_a_503_with_retry_after_carries_retry_after_seconds():
    cluster = FakeCluster(faults=Faults(errors=[ErrorRule(503, verbs=("create",), retry_after=7)]))
    from kubernetes import client
    api = client.CoreV1Api(cluster.api_client())
    with pytest.raises(ApiException) as caught:
        cluster.run(api.create_namespaced_pod, NS, pod_manifest("x"))
    body = json.loads(caught.value.body)
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "7"
    assert body["details"]["retryAfterSeconds"] == 7


@pytest.mark.parametrize("value", ["1", "true", "True", "t", "TRUE", "yes"])
def test_the_gateway_reads_watch_as_the_server_does(value):
    request = Request.from_url("GET", f"/api/v1/namespaces/default/pods?watch={value}")
    assert classify(request)[0] == "watch"


def test_an_abandoned_wait_for_a_future_resource_version_is_forgotten():
    cluster, api = new_world()

    def scenario():
        with pytest.raises(ApiException) as caught:
            api.list_namespaced_pod(NS, resource_version="999999", resource_version_match="NotOlderThan")
        return caught.value.status

    assert cluster.run(scenario) == 504
    assert cluster.server._rv_waiters == []
