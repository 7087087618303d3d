"""What kubectl explain, auth can-i and cluster-info read, at the API level: the OpenAPI v3 schemas
are generated from the installed client's models (not written by hand), access reviews always
allow, and Services are stored and listed (kubectl cluster-info lists those of kube-system)."""

from __future__ import annotations

import kubernetes
from kubernetes.client import models

from fakecluster.api.openapi import v3_core, v3_index
from helpers import new_world


def test_the_pod_schema_is_the_client_s_models_with_their_descriptions_and_merge_keys():
    cluster, _ = new_world()
    schemas = v3_core(cluster.server)["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    spec = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert set(spec) == set(models.V1PodSpec.attribute_map.values())   # every field the client knows
    assert spec["containers"]["items"] == {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}],
                                           "default": {}}
    assert (spec["containers"]["x-kubernetes-patch-strategy"], spec["containers"]["x-kubernetes-patch-merge-key"]) \
        == ("merge", "name")
    assert spec["restartPolicy"]["type"] == "string" and "restart policy" in spec["restartPolicy"]["description"].lower()
    assert spec["activeDeadlineSeconds"] == {**spec["activeDeadlineSeconds"], "type": "integer", "format": "int64"}
    requests = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["requests"]
    assert (requests["type"], requests["additionalProperties"]) == ("object", {"type": "string"})
    assert "# noqa" not in requests["description"]    # (the 36.x models' docstrings carry lint marks)
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
    assert "x-kubernetes-patch-merge-key" not in meta["finalizers"]   # merged as a set
    for kind in ("Namespace", "Node", "Event", "Service"):
        name = "io.k8s.api.core.v1." + kind
        assert schemas[name]["x-kubernetes-group-version-kind"][0]["kind"] == kind
    assert v3_index(cluster.server)["paths"]["api/v1"]["serverRelativeURL"] == \
        v3_index(cluster.server)["paths"]["api/v1"]["serverRelativeURL"]   # a stable hash for client caches


def test_access_reviews_allow_everything():
    cluster, api = new_world()
    auth = kubernetes.client.AuthorizationV1Api(api.api_client)
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "default", "verb": "delete", "resource": "nodes"}}}
    answered = cluster.run(auth.create_self_subject_access_review, review)
    assert answered.status.allowed is True and "kubesim has no authorization" in answered.status.reason
    rules = cluster.run(auth.create_self_subject_rules_review, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "default"}})
    assert rules.status.resource_rules[0].verbs == ["*"] and rules.status.incomplete is False


def test_services_are_stored_and_listed():
    cluster, api = new_world()
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}

    def main():
        api.create_namespaced_service("default", service)
        listed = api.list_namespaced_service("default", label_selector="app=web").items
        none = api.list_namespaced_service("kube-system", label_selector="kubernetes.io/cluster-service=true").items
        api.delete_namespaced_service("web", "default")
        return listed, none, api.list_service_for_all_namespaces().items

    listed, none, after = cluster.run(main)
    assert [s.metadata.name for s in listed] == ["web"] and listed[0].spec.ports[0].port == 80
    assert none == [] and after == []
