import copy
import json

import jsonpatch
import jsonpointer
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from fakecluster.api.patch import SUPPORTED_PATCH_TYPES, PatchError, apply_patch

JSON = "application/json-patch+json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def make_pod():
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "worker",
            "labels": {"app": "airflow", "tier": "worker"},
            "finalizers": ["a.example/one"],
        },
        "spec": {
            "containers": [
                {
                    "name": "base",
                    "image": "python:3.11",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                },
                {"name": "sidecar", "image": "envoy:1"},
            ],
            "tolerations": [{"key": "x", "operator": "Exists"}],
        },
    }


def patched(patch, content_type, obj=None):
    body = patch if isinstance(patch, (str, bytes)) else json.dumps(patch)
    return apply_patch(make_pod() if obj is None else obj, body, content_type)


# --- labels via each patch type ------------------------------------------

@pytest.mark.parametrize("content_type", [MERGE, STRATEGIC])
def test_label_add_change_remove_by_merge_types(content_type):
    patch = {"metadata": {"labels": {"new": "yes", "tier": "gpu", "app": None}}}
    assert patched(patch, content_type)["metadata"]["labels"] == {"tier": "gpu", "new": "yes"}


def test_label_add_change_remove_by_json_patch():
    patch = [
        {"op": "add", "path": "/metadata/labels/new", "value": "yes"},
        {"op": "replace", "path": "/metadata/labels/tier", "value": "gpu"},
        {"op": "remove", "path": "/metadata/labels/app"},
    ]
    assert patched(patch, JSON)["metadata"]["labels"] == {"tier": "gpu", "new": "yes"}


# --- strategic merge ------------------------------------------------------

def test_strategic_merges_containers_by_name():
    patch = {"spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}}
    containers = patched(patch, STRATEGIC)["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("base", "python:3.11"),
        ("sidecar", "envoy:2"),
    ]
    assert containers[0]["env"] == make_pod()["spec"]["containers"][0]["env"]


def test_strategic_appends_new_container():
    patch = {"spec": {"containers": [{"name": "extra", "image": "busybox"}]}}
    names = [c["name"] for c in patched(patch, STRATEGIC)["spec"]["containers"]]
    assert names == ["base", "sidecar", "extra"]


def test_strategic_merges_env_by_name():
    patch = {"spec": {"containers": [{"name": "base", "env": [{"name": "B", "value": "20"},
                                                              {"name": "C", "value": "3"}]}]}}
    env = patched(patch, STRATEGIC)["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"},
                   {"name": "C", "value": "3"}]


def test_strategic_patch_delete_removes_container():
    patch = {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}
    containers = patched(patch, STRATEGIC)["spec"]["containers"]
    assert [c["name"] for c in containers] == ["base"]


def test_strategic_patch_delete_removes_map():
    patch = {"metadata": {"labels": {"$patch": "delete"}}}
    assert "labels" not in patched(patch, STRATEGIC)["metadata"]


def test_strategic_patch_replace_replaces_list():
    patch = {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}
    assert patched(patch, STRATEGIC)["spec"]["containers"] == [{"name": "only", "image": "x"}]


def test_strategic_patch_replace_replaces_map():
    patch = {"metadata": {"labels": {"$patch": "replace", "fresh": "1"}}}
    assert patched(patch, STRATEGIC)["metadata"]["labels"] == {"fresh": "1"}


def test_strategic_replaces_atomic_list():
    patch = {"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}}
    assert patched(patch, STRATEGIC)["spec"]["tolerations"] == [{"key": "y", "operator": "Exists"}]


def test_strategic_merges_finalizers_as_set():
    patch = {"metadata": {"finalizers": ["a.example/one", "b.example/two"]}}
    assert patched(patch, STRATEGIC)["metadata"]["finalizers"] == ["a.example/one", "b.example/two"]


def test_strategic_delete_from_primitive_list():
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/one"]}}
    metadata = patched(patch, STRATEGIC)["metadata"]
    assert metadata["finalizers"] == []
    assert not any(key.startswith("$") for key in metadata)


def test_strategic_set_element_order_is_dropped():
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "base"}],
                      "containers": [{"name": "base", "image": "python:3.12"}]}}
    spec = patched(patch, STRATEGIC)["spec"]
    assert "$setElementOrder/containers" not in spec
    assert spec["containers"][0]["image"] == "python:3.12"


def test_strategic_element_without_merge_key_is_invalid():
    with pytest.raises(PatchError) as caught:
        patched({"spec": {"containers": [{"image": "x", "args": ["a", 1.5], "stdin": None}]}}, STRATEGIC)
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")
    assert caught.value.message == "map: map[args:[a 1.5] image:x stdin:<nil>] does not contain declared merge key: name"


def test_strategic_unknown_directive_is_worded_as_kubernetes_mergepatch():
    with pytest.raises(PatchError) as caught:
        patched({"metadata": {"$patch": "sideways", "labels": {"a": "b"}}}, STRATEGIC)
    assert caught.value.message == "unknown patch type: sideways in map: map[$patch:sideways labels:map[a:b]]"


# --- merge patch ----------------------------------------------------------

def test_merge_patch_null_deletes_key():
    result = patched({"spec": {"tolerations": None}}, MERGE)
    assert "tolerations" not in result["spec"]


def test_merge_patch_replaces_lists_wholesale():
    patch = {"spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}}
    assert patched(patch, MERGE)["spec"]["containers"] == [{"name": "sidecar", "image": "envoy:2"}]


# --- JSON patch -----------------------------------------------------------

def test_json_patch_add_into_list():
    patch = [{"op": "add", "path": "/spec/containers/-", "value": {"name": "extra"}}]
    assert patched(patch, JSON)["spec"]["containers"][-1] == {"name": "extra"}


def test_json_patch_replace():
    patch = [{"op": "replace", "path": "/spec/containers/0/image", "value": "python:3.12"}]
    assert patched(patch, JSON)["spec"]["containers"][0]["image"] == "python:3.12"


def test_json_patch_remove():
    patch = [{"op": "remove", "path": "/spec/tolerations"}]
    assert "tolerations" not in patched(patch, JSON)["spec"]


def test_json_patch_test_failure_is_invalid():
    patch = [{"op": "test", "path": "/metadata/name", "value": "other"},
             {"op": "remove", "path": "/metadata/labels"}]
    with pytest.raises(PatchError) as caught:
        patched(patch, JSON)
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")


def test_json_patch_remove_missing_path_is_invalid():
    with pytest.raises(PatchError) as caught:
        patched([{"op": "remove", "path": "/metadata/labels/nope"}], JSON)
    assert caught.value.code == 422


def test_json_patch_body_must_be_a_list():
    with pytest.raises(PatchError) as caught:
        patched({"op": "remove", "path": "/spec"}, JSON)
    error = caught.value
    assert (error.code, error.reason) == (400, "BadRequest")
    assert error.message == (
        "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")


def test_json_patch_path_of_wrong_type_is_bad_request():
    with pytest.raises(PatchError) as caught:
        patched([{"op": "copy", "from": 5, "path": "/x"}], JSON)
    assert caught.value.code == 400


# --- shared behaviour -----------------------------------------------------

@pytest.mark.parametrize("content_type, patch", [
    (STRATEGIC, {"spec": {"containers": [{"name": "base", "env": [{"name": "A", "value": "9"}]}]}}),
    (MERGE, {"metadata": {"labels": {"app": None}}}),
    (JSON, [{"op": "replace", "path": "/spec/containers/0/env/0/value", "value": "9"}]),
])
def test_original_is_never_mutated(content_type, patch):
    pod = make_pod()
    result = patched(patch, content_type, obj=pod)
    assert pod == make_pod()
    assert result != pod


def test_malformed_json_is_bad_request():
    with pytest.raises(PatchError) as caught:
        patched(b'{"metadata": ', STRATEGIC)
    error = caught.value
    assert (error.code, error.reason) == (400, "BadRequest")
    assert error.message == "error decoding patch: unexpected end of JSON input"   # Go's words, not Python's


@pytest.mark.parametrize("content_type", [MERGE, STRATEGIC])
@pytest.mark.parametrize("body", ['["a"]', '"text"', "3"])
def test_merge_body_must_be_an_object(content_type, body):
    with pytest.raises(PatchError) as caught:
        patched(body, content_type)
    assert caught.value.code == 400


@pytest.mark.parametrize("content_type", ["application/apply-patch+yaml", "text/plain"])
def test_unsupported_content_type(content_type):
    with pytest.raises(PatchError) as caught:
        patched({"metadata": {}}, content_type)
    error = caught.value
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert error.message.endswith(", ".join(SUPPORTED_PATCH_TYPES))


def test_content_type_parameters_are_ignored():
    result = patched({"metadata": {"labels": None}}, MERGE + "; charset=utf-8")
    assert "labels" not in result["metadata"]


# --- properties -----------------------------------------------------------

keys = st.text(max_size=5).filter(lambda key: not key.startswith("$"))
leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                              allow_infinity=False) | st.text(max_size=5)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)


def reference_merge(target, patch):
    """RFC 7386, written as 'keep what the patch does not name, then merge'."""
    if not isinstance(patch, dict):
        return patch
    base = target if isinstance(target, dict) else {}
    merged = {key: value for key, value in base.items() if key not in patch}
    merged.update({key: reference_merge(base.get(key), value)
                   for key, value in patch.items() if value is not None})
    return merged


@settings(max_examples=300)
@given(json_objects, json_objects)
def test_merge_patch_matches_reference(target, patch):
    before = copy.deepcopy(target)
    assert apply_patch(target, json.dumps(patch), MERGE) == reference_merge(target, patch)
    assert target == before


@settings(max_examples=300)
@given(json_objects, json_objects)
def test_json_patch_from_make_patch_reaches_target(source, goal):
    # jsonpatch.make_patch itself emits unappliable patches for some list shapes (e.g.
    # {'': [None, []]} -> {'': [[], [False, None]]}), so the reference is jsonpatch's own apply:
    # where it reaches the goal we must too, and where it fails we must answer a PatchError.
    # Its diff also crashes outright on some keys that look like list indices ("0" beside ":");
    # those pairs give no patch to test.
    try:
        operations = jsonpatch.make_patch(source, goal).patch
    except (ValueError, TypeError):
        reject()
    try:
        expected = jsonpatch.apply_patch(copy.deepcopy(source), operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError):
        with pytest.raises(PatchError):
            apply_patch(source, json.dumps(operations), JSON)
        return
    assert apply_patch(source, json.dumps(operations), JSON) == expected
