"""PATCH and PUT through the real client: which patch type each body becomes, what a pod update
may change, the status subresource, and the 404/409/415/422 answers."""

from __future__ import annotations

import json

import pytest

from helpers import NS, UNSCHEDULABLE, new_world, pod_manifest, raw, rejected, status_of

STALE = ("Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply "
         "your changes to the latest version and try again")


@pytest.fixture
def web():
    """(cluster, api) with one settled, never-scheduled pod "web" labelled app=web, tier=front."""
    cluster, api = new_world()

    def main():
        api.create_namespaced_pod(NS, pod_manifest("web", labels={"app": "web", "tier": "front"},
                                                   annotations=UNSCHEDULABLE))
        cluster.sleep(1)

    cluster.run(main)
    return cluster, api


def read(cluster, api):
    return cluster.run(api.read_namespaced_pod, "web", NS)


def list_version(cluster, api) -> str:
    return cluster.run(api.list_namespaced_pod, NS).metadata.resource_version


def patch(cluster, api, body, **kwargs):
    return cluster.run(lambda: api.patch_namespaced_pod("web", NS, body, **kwargs))


def refused_patch(cluster, api, body, **kwargs):
    return cluster.run(lambda: rejected(api.patch_namespaced_pod, "web", NS, body, **kwargs))


# -- patch types -------------------------------------------------------------------------------

def test_dict_body_patches_labels_and_bumps_the_resource_version(web):
    cluster, api = web
    before = read(cluster, api).metadata.resource_version
    patched = patch(cluster, api, {"metadata": {"labels": {"owner": "me"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "front", "owner": "me"}
    assert int(patched.metadata.resource_version) > int(before)


def test_dict_body_is_a_strategic_merge_that_merges_containers_by_name(web):
    cluster, api = web
    patched = patch(cluster, api, {"spec": {"containers": [{"name": "base", "image": "busybox:1.37"}]}})
    container = patched.spec.containers[0]
    assert (container.image, container.image_pull_policy) == ("busybox:1.37", "IfNotPresent")


def test_merge_patch_replaces_lists_so_the_same_body_changes_the_spec_and_is_422(web):
    cluster, api = web
    error = refused_patch(cluster, api, {"spec": {"containers": [{"name": "base", "image": "busybox:1.37"}]}},
                          _content_type="application/merge-patch+json")
    assert (error.status, status_of(error)["reason"]) == (422, "Invalid")


def test_merge_patch_null_removes_a_label(web):
    cluster, api = web
    patched = patch(cluster, api, {"metadata": {"labels": {"tier": None}}},
                    _content_type="application/merge-patch+json")
    assert patched.metadata.labels == {"app": "web"}


def test_list_body_is_a_json_patch(web):
    cluster, api = web
    patched = patch(cluster, api, [{"op": "replace", "path": "/metadata/labels/tier", "value": "back"},
                                   {"op": "remove", "path": "/metadata/labels/app"}])
    assert patched.metadata.labels == {"tier": "back"}


JSON_PATCH_NOT_APPLIED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": "the server rejected our request due to an error in our request",
                          "reason": "Invalid", "details": {}, "code": 422}


@pytest.mark.parametrize("operations", [
    [{"op": "test", "path": "/metadata/labels/app", "value": "db"}],          # a failed test
    [{"op": "remove", "path": "/metadata/labels/missing"}],                   # a missing member
    [{"op": "replace", "path": "/spec/containers/7/image", "value": "x"}],    # an index out of range
    [{"op": "add", "path": "/no/such/parent", "value": 1}],                    # a missing parent
    [{"op": "frobnicate", "path": "/metadata"}],                               # an unknown op
    [{"op": "move", "from": "/metadata/nope", "path": "/metadata/x"}],         # a missing from
    [{"op": "add", "value": 1}],                                               # no path at all
])
def test_a_json_patch_that_does_not_apply_gets_kubernetes_generic_422(web, operations):
    cluster, api = web
    error = refused_patch(cluster, api, operations)
    assert error.status == 422 and status_of(error) == JSON_PATCH_NOT_APPLIED


def test_a_json_patch_that_leaves_no_object_is_422_naming_the_patch(web):
    cluster, api = web
    error = refused_patch(cluster, api, [{"op": "replace", "path": "", "value": [1]}])
    assert error.status == 422
    cause = status_of(error)["details"]["causes"][0]
    assert cause["field"] == "patch" and cause["message"].startswith(
        'Invalid value: "[1]": couldn\'t get version/kind; json parse error: json: cannot unmarshal array into Go '
        'value of type struct')


def test_malformed_json_patch_body_is_400_in_go_s_words(web):
    cluster, api = web
    reply = cluster.request("PATCH", "/api/v1/namespaces/default/pods/web", b'[{"op": "add",',
                            {"Content-Type": "application/json-patch+json"})
    assert reply.status == 400 and json.loads(reply.body)["message"] == \
        "error decoding patch: unexpected end of JSON input"
    reply = cluster.request("PATCH", "/api/v1/namespaces/default/pods/web", b"[{'op': 'add'}]",
                            {"Content-Type": "application/json-patch+json"})
    assert json.loads(reply.body)["message"] == \
        "error decoding patch: invalid character '\\'' looking for beginning of object key string"


def test_apply_patch_is_415_unsupported_media_type(web):
    cluster, api = web
    error = refused_patch(cluster, api, {"metadata": {"labels": {"a": "b"}}},
                          _content_type="application/apply-patch+yaml")
    assert error.status == 415
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the body of the request was in an unknown format - accepted media types include: "
                   "application/json-patch+json, application/merge-patch+json, "
                   "application/strategic-merge-patch+json",
        "reason": "UnsupportedMediaType", "code": 415}


# -- what a patch may change -------------------------------------------------------------------

def test_a_no_op_patch_keeps_the_resource_version(web):
    cluster, api = web
    pod_rv, list_rv = read(cluster, api).metadata.resource_version, list_version(cluster, api)
    patched = patch(cluster, api, {"metadata": {"labels": {"app": "web"}}})
    assert patched.metadata.resource_version == pod_rv
    assert list_version(cluster, api) == list_rv


def test_the_image_may_change(web):
    cluster, api = web
    patched = patch(cluster, api, [{"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:2"}])
    assert patched.spec.containers[0].image == "busybox:2"


def test_other_spec_fields_are_422_forbidden(web):
    cluster, api = web
    error = refused_patch(cluster, api, {"spec": {"restartPolicy": "Never"}})
    body = status_of(error)
    assert error.status == 422
    assert body["message"].startswith('Pod "web" is invalid: spec: Forbidden: pod updates may not change '
                                      "fields other than `spec.containers[*].image`")
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [("FieldValueForbidden", "spec")]


def test_a_repeated_env_name_is_accepted_with_kube_apiserver_s_warning():
    cluster, api = new_world()
    manifest = pod_manifest("twice")
    manifest["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"}, {"name": "A", "value": "2"}, {"name": "A", "value": "x$(A)"}]
    answer = cluster.run(lambda: raw(api, "POST", f"/api/v1/namespaces/{NS}/pods", manifest))
    assert answer.status == 201
    assert answer.headers["Warning"] == ('299 - "spec.containers[0].env[1]: hides previous definition of '
                                         '\\"A\\", which may be dropped when using apply"')


def test_the_whole_pod_as_a_patch_is_422_when_an_env_name_repeats_and_labels_alone_pass():
    """Upstream's adoption patched the whole pod it had read (#23885, #24015): a strategic merge
    keyed by env name folds the repeated name's values together, so the spec "changes"."""
    cluster, api = new_world()
    manifest = pod_manifest("twice")
    manifest["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    cluster.run(api.create_namespaced_pod, NS, manifest)
    whole = json.loads(cluster.run(lambda: api.read_namespaced_pod("twice", NS, _preload_content=False)).data)
    whole["metadata"]["labels"] = {"airflow-worker": "2"}
    error = rejected(cluster.run, lambda: api.patch_namespaced_pod("twice", NS, whole))
    assert error.status == 422 and "pod updates may not change fields" in status_of(error)["message"]
    relabelled = cluster.run(api.patch_namespaced_pod, "twice", NS, {"metadata": {"labels": {"airflow-worker": "2"}}})
    assert relabelled.metadata.labels == {"airflow-worker": "2"}
    assert [e.value for e in relabelled.spec.containers[0].env] == ["1", "2"]


def test_main_resource_patch_cannot_change_status(web):
    cluster, api = web
    before = read(cluster, api)
    patched = patch(cluster, api, {"status": {"phase": "Succeeded"}})
    assert patched.status.phase == "Pending"
    assert patched.metadata.resource_version == before.metadata.resource_version


def test_status_subresource_patch_changes_status_only(web):
    cluster, api = web
    patched = cluster.run(lambda: api.patch_namespaced_pod_status(
        "web", NS, {"status": {"phase": "Failed", "reason": "Evicted"},
                    "metadata": {"labels": {"app": "changed"}},
                    "spec": {"restartPolicy": "Never"}}))
    assert (patched.status.phase, patched.status.reason) == ("Failed", "Evicted")
    assert (patched.metadata.labels["app"], patched.spec.restart_policy) == ("web", "Always")


def test_patch_with_a_stale_resource_version_is_409_conflict(web):
    cluster, api = web
    error = refused_patch(cluster, api, {"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}})
    assert (error.status, status_of(error)["reason"], status_of(error)["message"]) == (409, "Conflict", STALE)


def test_patch_that_renames_the_pod_is_400(web):
    cluster, api = web
    error = refused_patch(cluster, api, {"metadata": {"name": "other"}})
    assert error.status == 400
    assert status_of(error)["message"] == "the name of the object (other) does not match the name on the URL (web)"


def test_patch_leaving_a_field_of_the_wrong_type_is_422_not_500(web):
    cluster, api = web
    error = refused_patch(cluster, api, [{"op": "add", "path": "/metadata/labels/count", "value": 3}])
    body = status_of(error)
    assert error.status == 422
    assert body["details"]["causes"][0]["field"] == "patch"
    assert body["details"]["causes"][0]["message"].endswith(
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string")


def test_patch_of_a_missing_pod_is_404(web):
    cluster, api = web
    error = cluster.run(lambda: rejected(api.patch_namespaced_pod, "ghost", NS, {"metadata": {}}))
    assert (error.status, status_of(error)["message"]) == (404, 'pods "ghost" not found')


# -- replace (PUT) -----------------------------------------------------------------------------

def read_changed(api, change):
    """Read "web" and apply ``change`` to the model (to PUT it back)."""
    pod = api.read_namespaced_pod("web", NS)
    change(pod)
    return pod


def replace(cluster, api, change):
    return cluster.run(lambda: api.replace_namespaced_pod("web", NS, read_changed(api, change)))


def refused_replace(cluster, api, change):
    return cluster.run(lambda: rejected(api.replace_namespaced_pod, "web", NS, read_changed(api, change)))


def relabel(pod):
    pod.metadata.labels = {"app": "web", "tier": "back"}


def test_replace_at_the_current_resource_version_succeeds(web):
    cluster, api = web
    before = read(cluster, api).metadata.resource_version
    replaced = replace(cluster, api, relabel)
    assert replaced.metadata.labels["tier"] == "back"
    assert int(replaced.metadata.resource_version) > int(before)


def test_replace_with_a_stale_resource_version_is_409_conflict(web):
    cluster, api = web

    def stale(pod):
        relabel(pod)
        pod.metadata.resource_version = str(int(pod.metadata.resource_version) - 1)

    error = refused_replace(cluster, api, stale)
    assert error.status == 409
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": STALE,
        "reason": "Conflict", "details": {"name": "web", "kind": "pods"}, "code": 409}


def test_replace_without_resource_version_is_an_unconditional_update_for_pods(web):
    # podStrategy.AllowUnconditionalUpdate() is true upstream, so this PUT overwrites; the
    # 422 "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" is
    # what resources without unconditional updates (deployments.apps, ...) answer.
    cluster, api = web

    def unconditional(pod):
        relabel(pod)
        pod.metadata.resource_version = None

    assert replace(cluster, api, unconditional).metadata.labels["tier"] == "back"


def test_replace_naming_another_pod_is_400(web):
    cluster, api = web
    error = refused_replace(cluster, api, lambda pod: setattr(pod.metadata, "name", "other"))
    assert (error.status, status_of(error)["message"]) == (
        400, "the name of the object (other) does not match the name on the URL (web)")


def test_replace_with_another_uid_is_409_precondition_failed(web):
    cluster, api = web
    uid = read(cluster, api).metadata.uid
    error = refused_replace(cluster, api, lambda pod: setattr(pod.metadata, "uid", "0000"))
    assert (error.status, status_of(error)["message"]) == (
        409, f'Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: 0000, '
             f"UID in object meta: {uid}")


def test_replace_of_a_missing_pod_is_404(web):
    cluster, api = web
    error = cluster.run(lambda: rejected(api.replace_namespaced_pod, "ghost", NS, pod_manifest("ghost")))
    assert (error.status, status_of(error)["message"]) == (404, 'pods "ghost" not found')
