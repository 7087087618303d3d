"""Shared helpers for tests that drive the fake API server through the real kubernetes client.

Nothing here mocks the client: ``world`` builds a FakeCluster and a real ``CoreV1Api`` on it,
and ``raw`` sends what the generated API cannot express (malformed bodies, unknown paths,
odd verbs and content types) through the same client's own HTTP layer. Both client generations
(36.x classic, 37.x pydantic) are supported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from fakecluster import FakeCluster

NS = "default"
UNSCHEDULABLE = {"kubesim.io/unschedulable": "true"}   # stays Pending, never bound to a node
LONG_RUN = {"kubesim.io/run-seconds": "3600"}           # runs for an hour once started


def pod_manifest(name: str | None = "web", labels: dict | None = None,
                 annotations: dict | None = None, **spec) -> dict:
    """A minimal valid pod as a plain dict; ``spec`` keys are merged into the pod spec."""
    metadata: dict = {"name": name} if name is not None else {}
    if labels is not None:
        metadata["labels"] = dict(labels)
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "base", "image": "busybox:1.36"}], **spec}}


def new_world(seed: int = 1, **kw) -> tuple[FakeCluster, kubernetes.client.CoreV1Api]:
    cluster = FakeCluster(seed=seed, **kw)
    return cluster, kubernetes.client.CoreV1Api(cluster.api_client())


@pytest.fixture
def world():
    """(cluster, api): a fresh three-node cluster and a real CoreV1Api on it."""
    return new_world()


def as_dict(api, obj) -> dict:
    """A client model (either generation) back as the JSON dict the server sent."""
    return api.api_client.sanitize_for_serialization(obj)


def status_of(error: ApiException) -> dict:
    """The Status body of an ApiException, parsed."""
    return json.loads(error.body)


def rejected(call, *args, **kwargs) -> ApiException:
    """Call a CoreV1Api method that must fail; return the ApiException it raised."""
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return caught.value


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def raw(api, method: str, path: str, body=None, content_type: str | None = "application/json") -> Answer:
    """One request below the generated API, through the client's own HTTP layer.

    ``body`` as bytes goes out verbatim through the client's urllib3 pool (``rest_client`` would
    JSON-encode it); anything else through ``rest_client.request``, which encodes it as JSON as
    both client generations do. ``path`` may carry a query string.
    """
    client = api.api_client
    url = client.configuration.host + path
    headers = {"Content-Type": content_type} if content_type else {}
    if isinstance(body, bytes):
        response = client.rest_client.pool_manager.request(method, url, body=body, headers=headers)
        return Answer(response.status, dict(response.headers), response.data)
    try:
        response = client.rest_client.request(method, url, headers=headers, body=body)
    except ApiException as error:  # the classic client raises on non-2xx, the new one does not
        return Answer(error.status, dict(error.headers or {}), error.body)
    data = response.read() if hasattr(response, "read") else response.data
    headers = response.headers if hasattr(response, "headers") else response.getheaders()
    return Answer(response.status, dict(headers), data)


def state(api) -> tuple[str, list]:
    """(list resourceVersion, every pod as JSON) through the client: equal means nothing changed."""
    listed = api.list_pod_for_all_namespaces()
    return listed.metadata.resource_version, [as_dict(api, pod) for pod in listed.items]


def names(pods) -> list[str]:
    return [pod.metadata.name for pod in pods.items]
