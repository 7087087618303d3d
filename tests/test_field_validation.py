"""fieldValidation through the client's own HTTP layer (the 37.x models refuse unknown fields before
sending, so bodies go out raw): Strict refuses unknown fields with kube-apiserver's 400, Warn (the
default) drops them and says so in a Warning header, Ignore drops them silently. The schema comes
from the installed client's models, so every real core/v1 field is known."""

from __future__ import annotations

import pytest

from fakecluster.api.schema import kind_schema, unknown_fields
from helpers import as_dict, new_world, pod_manifest, raw

PODS = "/api/v1/namespaces/default/pods"
ODD = pod_manifest("odd") | {"spec": {"containers": [{"name": "base", "image": "busybox:1.36", "imagePullPolicyy": "x"}],
                                      "restartPolicy": "Never", "nodeSelectr": {"a": "b"}}, "extra": 1}
STATUS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}


def send(cluster, api, method: str, path: str, body, content_type: str = "application/json"):
    return cluster.run(lambda: raw(api, method, path, body, content_type))


def test_strict_refuses_unknown_fields_with_kube_apiserver_s_message():
    cluster, api = new_world()
    answer = send(cluster, api, "POST", PODS + "?fieldValidation=Strict", ODD)
    assert answer.status == 400 and answer.json() == {**STATUS,
        "message": 'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field '
                   '"spec.containers[0].imagePullPolicyy", unknown field "spec.nodeSelectr", unknown field "extra"',
        "reason": "BadRequest", "code": 400}
    assert cluster.pods() == []


@pytest.mark.parametrize("query", ["", "?fieldValidation=Warn"])
def test_warn_drops_unknown_fields_and_says_so_in_a_warning_header(query):
    cluster, api = new_world()
    answer = send(cluster, api, "POST", PODS + query, ODD)
    assert answer.status == 201
    assert answer.headers["Warning"] == ('299 - "unknown field \\"spec.containers[0].imagePullPolicyy\\"", '
                                         '299 - "unknown field \\"spec.nodeSelectr\\"", '
                                         '299 - "unknown field \\"extra\\""')
    stored = cluster.pod("default", "odd")
    assert "extra" not in stored and "nodeSelectr" not in stored["spec"]
    assert "imagePullPolicyy" not in stored["spec"]["containers"][0]
    assert answer.json()["spec"]["restartPolicy"] == "Never" and "extra" not in answer.json()


def test_ignore_drops_unknown_fields_without_a_word():
    cluster, api = new_world()
    answer = send(cluster, api, "POST", PODS + "?fieldValidation=Ignore", ODD)
    assert answer.status == 201 and "Warning" not in answer.headers
    assert "nodeSelectr" not in cluster.pod("default", "odd")["spec"]


def test_strict_patches_and_updates_too():
    cluster, api = new_world()
    cluster.run(api.create_namespaced_pod, "default", pod_manifest("web"))
    patched = send(cluster, api, "PATCH", PODS + "/web?fieldValidation=Strict", {"metadata": {"labelz": {"a": "b"}}},
                   "application/merge-patch+json")
    assert patched.status == 400 and patched.json()["message"] == 'strict decoding error: unknown field "metadata.labelz"'
    pod = as_dict(api, cluster.run(api.read_namespaced_pod, "web", "default"))
    pod["spec"]["containers"][0]["imagee"] = "x"
    updated = send(cluster, api, "PUT", PODS + "/web?fieldValidation=Strict", pod)
    assert updated.status == 400 and updated.json()["message"] == \
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagee"'
    warned = send(cluster, api, "PATCH", PODS + "/web", [{"op": "add", "path": "/metadata/labelz", "value": {}}],
                  "application/json-patch+json")
    assert warned.status == 200 and warned.headers["Warning"] == '299 - "unknown field \\"metadata.labelz\\""'


def test_an_unsupported_directive_is_422_naming_the_choices():
    cluster, api = new_world()
    answer = send(cluster, api, "POST", PODS + "?fieldValidation=Loud", pod_manifest("web"))
    assert answer.status == 422
    assert answer.json()["message"] == 'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported ' \
                                       'value: "Loud": supported values: "", "Ignore", "Strict", "Warn"'


def test_the_client_s_own_models_pass_strict_validation():
    cluster, api = new_world()
    spec = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "Exists"}]}]}}},
        "volumes": [{"name": "v", "emptyDir": {}}], "tolerations": [{"key": "a", "operator": "Exists"}]}
    created = cluster.run(lambda: api.create_namespaced_pod("default", pod_manifest("web", labels={"a": "b"}, **spec),
                                                            field_validation="Strict"))
    cluster.run(api.create_namespaced_pod, "default", pod_manifest("stuck", annotations={"kubesim.io/unschedulable": "true"}))
    cluster.run(cluster.sleep, 5)
    body = as_dict(api, cluster.run(api.read_namespaced_pod, "web", "default"))
    assert created.metadata.name == "web" and unknown_fields(body, kind_schema("Pod")) == []
    assert unknown_fields(cluster.server.stores["nodes"].get("", "node-1"), kind_schema("Node")) == []
    assert unknown_fields(cluster.server.stores["namespaces"].get("", "default"), kind_schema("Namespace")) == []
    assert cluster.events() and all(unknown_fields(e, kind_schema("Event")) == [] for e in cluster.events())
