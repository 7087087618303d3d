"""Bad input sent below the generated API, through the client's own HTTP layer: malformed and
mistyped bodies, oversized bodies, unknown paths, wrong verbs and content types, bad query values.
Every answer is a Status with Kubernetes' code and wording, never a 500, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import NS, UNSCHEDULABLE, new_world, pod_manifest, raw, state

PODS = f"/api/v1/namespaces/{NS}/pods"
FIND_KIND = ('json: cannot unmarshal array into Go value of type struct { APIVersion string '
             '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }')


def status(code: int, reason: str, message: str, **extra) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:
        body["reason"] = reason
    return {**body, **extra, "code": code}


@pytest.fixture
def world():
    """(cluster, api) with one settled, never-scheduled pod "web"."""
    cluster, api = new_world()

    def main():
        api.create_namespaced_pod(NS, pod_manifest("web", annotations=UNSCHEDULABLE))
        cluster.sleep(1)

    cluster.run(main)
    return cluster, api


def send(cluster, api, method, path, body=None, content_type="application/json"):
    return cluster.run(lambda: raw(api, method, path, body, content_type))


# -- malformed JSON ----------------------------------------------------------------------------

MALFORMED = {
    "unquoted-key": (b"{bad", "invalid character 'b' looking for beginning of object key string ({bad)"),
    "trailing-comma": (b'{"kind":"Pod",}', "invalid character '}' looking for beginning of object key string "
                                               '({"kind":"Pod",})'),
    "missing-comma": (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair ({\"a\":1 \"b\":2})"),
    "truncated": (b'{"kind":"Pod"', 'unexpected end of JSON input ({"kind":"Pod")'),
    "empty": (b"", "unexpected end of JSON input (<empty>)"),
    "nan": (b'{"spec":NaN}', "invalid character 'N' looking for beginning of value ({\"spec\":NaN})"),
    "bad-literal": (b'{"spec":tru}', "invalid character '}' in literal true (expecting 'e') ({\"spec\":tru})"),
    "not-an-object": (b"[1,2]", f"{FIND_KIND} (5b312c325d)"),
}


@pytest.mark.parametrize("body, problem", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json_is_400_with_go_decoders_message(world, body, problem):
    cluster, api = world
    answer = send(cluster, api, "POST", PODS, body)
    assert answer.status == 400 and answer.headers["Content-Type"] == "application/json"
    assert answer.json() == status(400, "BadRequest", "the object provided is unrecognized (must be of type Pod): "
                                                      f"couldn't get version/kind; json parse error: {problem}")


def test_long_malformed_body_is_summarised_to_thirty_bytes(world):
    cluster, api = world
    body = b'{"metadata": {"name": "web-with-a-long-name" oops}}'
    answer = send(cluster, api, "POST", PODS, body)
    assert answer.json()["message"].endswith(" after object key:value pair (" + body[:30].decode() + " ...)")


# -- well-formed JSON of the wrong types -------------------------------------------------------

MISTYPED = {
    "name-number": ({"metadata": {"name": 5}}, "number into Go struct field ObjectMeta.metadata.name of type string"),
    "labels-list": ({"metadata": {"name": "x", "labels": ["a"]}},
                    "array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    "label-value-bool": ({"metadata": {"name": "x", "labels": {"a": True}}},
                         "bool into Go struct field ObjectMeta.metadata.labels of type string"),
    "spec-list": ({"metadata": {"name": "x"}, "spec": []}, "array into Go struct field Pod.spec of type v1.PodSpec"),
    "containers-object": ({"metadata": {"name": "x"}, "spec": {"containers": {"name": "a"}}},
                          "object into Go struct field PodSpec.spec.containers of type []v1.Container"),
    "container-image-number": ({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a", "image": 1}]}},
                               "number into Go struct field Container.spec.containers.image of type string"),
    "grace-string": ({"metadata": {"name": "x"}, "spec": {"terminationGracePeriodSeconds": "30",
                                                          "containers": [{"name": "a", "image": "b"}]}},
                     "string into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    "grace-fraction": ({"metadata": {"name": "x"}, "spec": {"terminationGracePeriodSeconds": 1.5,
                                                            "containers": [{"name": "a", "image": "b"}]}},
                       "number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    # just past int64, and past uint64: Go names the exact literal, so it must not become a float
    "grace-int64-overflow": ({"metadata": {"name": "x"}, "spec": {"terminationGracePeriodSeconds": 2**63,
                                                                  "containers": [{"name": "a", "image": "b"}]}},
                             "number 9223372036854775808 into Go struct field "
                             "PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    "grace-huge": ({"metadata": {"name": "x"}, "spec": {"terminationGracePeriodSeconds": 10**25,
                                                        "containers": [{"name": "a", "image": "b"}]}},
                   "number 10000000000000000000000000 into Go struct field "
                   "PodSpec.spec.terminationGracePeriodSeconds of type int64"),
}


@pytest.mark.parametrize("body, problem", MISTYPED.values(), ids=MISTYPED.keys())
def test_fields_of_the_wrong_json_type_are_400(world, body, problem):
    cluster, api = world
    answer = send(cluster, api, "POST", PODS, {"apiVersion": "v1", "kind": "Pod", **body})
    assert answer.status == 400
    assert answer.json() == status(400, "BadRequest",
                                   f'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal {problem}')


def test_an_invalid_resource_quantity_is_400(world):
    cluster, api = world
    body = pod_manifest("x")
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "lots"}}
    answer = send(cluster, api, "POST", PODS, body)
    assert answer.json() == status(400, "BadRequest", 'Pod in version "v1" cannot be handled as a Pod: quantities '
                                   "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def test_delete_options_of_the_wrong_type_are_400(world):
    cluster, api = world
    answer = send(cluster, api, "DELETE", f"{PODS}/web", {"gracePeriodSeconds": "soon"})
    assert answer.json() == status(400, "BadRequest", "json: cannot unmarshal string into Go struct field "
                                   "DeleteOptions.gracePeriodSeconds of type int64")


def test_malformed_delete_options_are_400(world):
    cluster, api = world
    answer = send(cluster, api, "DELETE", f"{PODS}/web", b"{grace")
    assert answer.json() == status(400, "BadRequest", "couldn't get version/kind; json parse error: "
                                   "invalid character 'g' looking for beginning of object key string")


# -- size, content type ------------------------------------------------------------------------

def padded(size: int) -> bytes:
    """A valid pod manifest, padded with trailing spaces to exactly ``size`` bytes."""
    body = json.dumps(pod_manifest("big", annotations=UNSCHEDULABLE)).encode()
    return body + b" " * (size - len(body))


def test_a_body_of_exactly_three_mebibytes_is_accepted(world):
    cluster, api = world
    assert send(cluster, api, "POST", PODS, padded(3 * 1024 * 1024)).status == 201


def test_a_body_over_three_mebibytes_is_413(world):
    cluster, api = world
    answer = send(cluster, api, "POST", PODS, padded(3 * 1024 * 1024 + 1))
    assert answer.status == 413
    assert answer.json() == status(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def test_a_body_in_an_unknown_format_is_415(world):
    cluster, api = world
    answer = send(cluster, api, "POST", PODS, json.dumps(pod_manifest("x")).encode(), "text/plain")
    assert answer.json() == status(415, "UnsupportedMediaType", "the body of the request was in an unknown format "
                                   "- accepted media types include: application/json, application/yaml")


def test_a_yaml_body_is_accepted(world):
    cluster, api = world
    manifest = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-yaml\nspec:\n  containers:\n" \
               b"  - name: base\n    image: busybox:1.36\n"
    answer = send(cluster, api, "POST", PODS, manifest, "application/yaml")
    assert (answer.status, answer.json()["metadata"]["name"]) == (201, "from-yaml")


# -- paths, verbs, query values ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/widgets", "/apis/apps/v1/namespaces/default/deployments",
                                  f"{PODS}/web/logz", "/api/v2/pods", "/healthz/nonsense"])
def test_an_unknown_path_is_404_status(world, path):
    cluster, api = world
    answer = send(cluster, api, "GET", path)
    assert answer.json() == status(404, "NotFound", "the server could not find the requested resource", details={})


@pytest.mark.parametrize("method, path", [("PUT", PODS), ("PATCH", PODS), ("POST", f"{PODS}/web"),
                                          ("DELETE", "/api/v1/pods"), ("POST", f"{PODS}/web/status")])
def test_an_unsupported_verb_is_405(world, method, path):
    cluster, api = world
    answer = send(cluster, api, method, path, {})
    assert answer.json() == status(405, "MethodNotAllowed", "the server does not allow this method on the "
                                   "requested resource", details={})


def test_a_non_numeric_resource_version_is_400(world):
    cluster, api = world
    answer = send(cluster, api, "GET", f"{PODS}?resourceVersion=latest")
    assert answer.json() == status(400, "BadRequest", 'resourceVersion: Invalid value: "latest": '
                                   'strconv.ParseUint: parsing "latest": invalid syntax')


def test_a_percent_encoded_name_is_decoded(world):
    cluster, api = world
    answer = send(cluster, api, "GET", f"{PODS}/we%62")
    assert (answer.status, answer.json()["metadata"]["name"]) == (200, "web")


# -- nothing sticks ----------------------------------------------------------------------------

REJECTED = {
    "malformed-create": ("POST", PODS, b"{bad"),
    "mistyped-create": ("POST", PODS, {"metadata": {"name": ["x"]}}),
    "oversized-create": ("POST", PODS, padded(3 * 1024 * 1024 + 1)),
    "malformed-put": ("PUT", f"{PODS}/web", b'{"metadata": '),
    "mistyped-put": ("PUT", f"{PODS}/web", {"metadata": {"name": "web", "labels": {"a": 1}}}),
    "malformed-patch": ("PATCH", f"{PODS}/web", b"{bad"),
    "malformed-delete": ("DELETE", f"{PODS}/web", b"[1"),
    "mistyped-delete": ("DELETE", f"{PODS}/web", {"preconditions": {"uid": 7}}),
    "put-on-collection": ("PUT", PODS, {}),
    "unknown-path": ("POST", "/api/v1/widgets", {}),
}


@pytest.mark.parametrize("method, path, body", REJECTED.values(), ids=REJECTED.keys())
def test_a_rejected_request_leaves_store_and_revision_unchanged(world, method, path, body):
    cluster, api = world

    def main():
        before = state(api)
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        answer = raw(api, method, path, body, content_type)
        return before, answer, state(api)

    before, answer, after = cluster.run(main)
    assert 400 <= answer.status < 500 and answer.json()["kind"] == "Status"
    assert after == before


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)
FIELDS = st.sampled_from(["metadata", "spec", "status", "kind", "apiVersion"])
PATHS = st.sampled_from(["name", "labels", "annotations", "generateName", "namespace", "finalizers",
                         "containers", "restartPolicy", "nodeName", "terminationGracePeriodSeconds", "priority"])


@st.composite
def mangled_pods(draw):
    """A valid pod with one field, at the top or one level down, replaced by arbitrary JSON."""
    body = pod_manifest(draw(st.sampled_from(["web", "new", "New!"])))
    section = draw(FIELDS)
    if section in ("metadata", "spec") and draw(st.booleans()):
        body[section] = {**body[section], draw(PATHS): draw(JSON)}
    else:
        body[section] = draw(JSON)
    return body


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]), body=mangled_pods())
def test_no_body_makes_the_server_fail_and_a_refused_one_changes_nothing(method, body):
    cluster, api = new_world()
    path = PODS if method == "POST" else f"{PODS}/web"

    def main():
        api.create_namespaced_pod(NS, pod_manifest("web", annotations=UNSCHEDULABLE))
        cluster.sleep(1)
        before = state(api)
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        answer = raw(api, method, path, body, content_type)
        return before, answer, state(api)

    before, answer, after = cluster.run(main)
    assert answer.status < 500, answer.body
    if answer.status >= 400:
        assert answer.json()["kind"] == "Status" and after == before
