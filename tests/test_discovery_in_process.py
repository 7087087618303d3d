"""What in-cluster clients ask before anything else, in-process: discovery (the DynamicClient),
metadata-only lists (``as=PartialObjectMetadataList``), and how such requests are counted; and a
client that spins at one virtual instant ends the run instead of hanging it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from fakecluster import ErrorRule, FakeCluster, Faults, Livelock

METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"


def pod(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"app": "x"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}}


def get(api_client, path: str, accept: str = "application/json"):
    """A GET through the client's own urllib3 pool (both client generations), any status."""
    return api_client.rest_client.pool_manager.request("GET", api_client.configuration.host + path,
                                                       headers={"Accept": accept})


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(seed=3)


def test_the_dynamic_client_discovers_pods_in_process(cluster, tmp_path):
    api = client.CoreV1Api(cluster.api_client())

    def discover():
        api.create_namespaced_pod("default", pod("a"))
        dynamic = DynamicClient(cluster.api_client(), cache_file=str(tmp_path / "cache.json"))
        pods = dynamic.resources.get(api_version="v1", kind="Pod")
        return pods.namespaced, [p.metadata.name for p in dynamic.get(resource=pods, namespace="default").items]

    assert cluster.run(discover) == (True, ["a"])


def test_discovery_is_counted_as_a_get_of_no_resource_not_a_list(cluster):
    api_client = cluster.api_client()

    def read(path):
        return json.loads(get(api_client, path).data)

    documents = cluster.run(lambda: [read(p) for p in ("/api", "/apis", "/api/v1", "/version")])
    assert [d.get("kind") for d in documents[:3]] == ["APIVersions", "APIGroupList", "APIResourceList"]
    assert "pods" in [r["name"] for r in documents[2]["resources"]]
    assert documents[0]["serverAddressByClientCIDRs"][0]["serverAddress"] == "kubernetes.default.svc:443"
    assert cluster.gateway.calls == {("get", 200): 4}
    assert {(c.verb, c.resource) for c in cluster.gateway.log} == {("get", "")}


def test_a_metadata_only_list_has_metadata_alone(cluster):
    api = client.CoreV1Api(cluster.api_client())

    def list_metadata():
        for name in ("a", "b"):
            api.create_namespaced_pod("default", pod(name))
        response = get(api.api_client, "/api/v1/namespaces/default/pods", METADATA_LIST)
        return response.headers["Content-Type"], json.loads(response.data)

    content_type, body = cluster.run(list_metadata)
    assert content_type == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    assert body["kind"] == "PartialObjectMetadataList" and body["apiVersion"] == "meta.k8s.io/v1"
    assert int(body["metadata"]["resourceVersion"]) > 0
    assert [item["kind"] for item in body["items"]] == ["PartialObjectMetadata"] * 2
    assert [item["metadata"]["name"] for item in body["items"]] == ["a", "b"]
    assert all(set(item) == {"kind", "apiVersion", "metadata"} for item in body["items"])


def test_the_dynamic_client_lists_metadata_only_as_upstream_airflow_does(cluster, tmp_path):
    def list_metadata():
        client.CoreV1Api(cluster.api_client()).create_namespaced_pod("default", pod("a"))
        dynamic = DynamicClient(cluster.api_client(), cache_file=str(tmp_path / "cache.json"))
        pods = dynamic.resources.get(api_version="v1", kind="Pod")
        listed = dynamic.get(resource=pods, namespace="default", label_selector="app=x",
                             header_params={"Accept": METADATA_LIST})
        return listed.kind, [(item.kind, item.metadata.name, item.spec) for item in listed.items]

    assert cluster.run(list_metadata) == ("PartialObjectMetadataList", [("PartialObjectMetadata", "a", None)])


def test_a_metadata_list_form_asked_of_one_object_is_406(cluster):
    api = client.CoreV1Api(cluster.api_client())

    def get_one():
        api.create_namespaced_pod("default", pod("a"))
        return get(api.api_client, "/api/v1/namespaces/default/pods/a", METADATA_LIST)

    answer = cluster.run(get_one)
    assert answer.status == 406 and json.loads(answer.data)["reason"] == "NotAcceptable"


def test_a_client_spinning_at_one_instant_ends_the_run(cluster):
    cluster.faults.errors.append(ErrorRule(500, verbs=("delete",), probability=1.0))
    api = client.CoreV1Api(cluster.api_client())

    def retry_without_pause():
        while True:   # as a loop that re-queues a failed delete and takes it again at once
            try:
                api.delete_namespaced_pod("gone", "default")
            except client.ApiException:
                pass

    with pytest.raises(Livelock, match="10,000 API calls at virtual time 0s without time passing"):
        cluster.run(retry_without_pause)
