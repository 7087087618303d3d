"""GET and LIST through the real client: 404 bodies, namespaces, label and field selectors, and
the resourceVersion / resourceVersionMatch table (unset, "0", exact, not-older-than, 410, 504)."""

from __future__ import annotations

import pytest

from helpers import LONG_RUN, NS, UNSCHEDULABLE, as_dict, names, pod_manifest, rejected, status_of
from helpers import world  # noqa: F401  (the fixture)


def make(api, name, namespace=NS, labels=None, annotations=UNSCHEDULABLE):
    return api.create_namespaced_pod(namespace, pod_manifest(name, labels=labels, annotations=annotations))


def list_rv(api) -> int:
    return int(api.list_namespaced_pod(NS).metadata.resource_version)


# -- get ---------------------------------------------------------------------------------------

def test_get_returns_the_pod_as_stored(world):
    cluster, api = world
    created, read = cluster.run(lambda: (make(api, "web"), api.read_namespaced_pod("web", NS)))
    assert as_dict(api, read) == as_dict(api, created)


def test_get_of_a_missing_pod_is_404_not_found(world):
    cluster, api = world
    error = cluster.run(rejected, api.read_namespaced_pod, "ghost", NS)
    assert error.status == 404
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "ghost" not found', "reason": "NotFound",
        "details": {"name": "ghost", "kind": "pods"}, "code": 404}


def test_get_looks_only_in_the_namespace_asked(world):
    cluster, api = world
    cluster.run(make, api, "web")
    error = cluster.run(rejected, api.read_namespaced_pod, "web", "kube-system")
    assert error.status == 404


# -- namespaces --------------------------------------------------------------------------------

def test_namespaced_list_sees_only_its_namespace(world):
    cluster, api = world
    cluster.run(lambda: (make(api, "b"), make(api, "a", "kube-system"), make(api, "c")))
    assert names(cluster.run(api.list_namespaced_pod, NS)) == ["b", "c"]


def test_list_for_all_namespaces_sees_every_pod_in_namespace_then_name_order(world):
    cluster, api = world
    cluster.run(lambda: (make(api, "b"), make(api, "a", "kube-system"), make(api, "c")))
    listed = cluster.run(api.list_pod_for_all_namespaces)
    assert [(p.metadata.namespace, p.metadata.name) for p in listed.items] == [
        ("default", "b"), ("default", "c"), ("kube-system", "a")]


def test_list_resource_version_is_the_latest_write(world):
    cluster, api = world
    created = cluster.run(make, api, "web")
    listed, read = cluster.run(lambda: (api.list_namespaced_pod(NS), api.read_namespaced_pod("web", NS)))
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    assert listed.items[0].metadata.resource_version == read.metadata.resource_version


# -- selectors ---------------------------------------------------------------------------------

LABELLED = {"a": {"app": "web", "tier": "front"}, "b": {"app": "web", "tier": "back"},
            "c": {"app": "db"}, "d": {}}


@pytest.mark.parametrize("selector, expected", [
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c", "d"]),
    ("app=web,tier=back", ["b"]),
    ("tier in (front,back)", ["a", "b"]),
    ("tier notin (front)", ["b", "c", "d"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d"]),
])
def test_label_selector(world, selector, expected):
    cluster, api = world

    def main():
        for name, labels in LABELLED.items():
            make(api, name, labels=labels)
        return api.list_namespaced_pod(NS, label_selector=selector)

    assert names(cluster.run(main)) == expected


def test_field_selectors_on_phase_node_and_name(world):
    cluster, api = world

    def main():
        make(api, "waiting")                          # never scheduled: Pending, no node
        make(api, "busy", annotations=LONG_RUN)       # bound and Running after a moment
        cluster.sleep(5)
        node = api.read_namespaced_pod("busy", NS).spec.node_name
        return node, [names(api.list_namespaced_pod(NS, field_selector=s)) for s in (
            "status.phase=Pending", "status.phase=Running", f"spec.nodeName={node}", "spec.nodeName=",
            "metadata.name=busy", "metadata.name!=busy,status.phase!=Running")]

    node, found = cluster.run(main)
    assert node
    assert found == [["waiting"], ["busy"], ["busy"], ["waiting"], ["busy"], ["waiting"]]


def test_unsupported_field_selector_is_400(world):
    cluster, api = world
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, field_selector="spec.image=busybox"))
    assert error.status == 400
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "field label not supported: spec.image", "reason": "BadRequest", "code": 400}


def test_event_field_selectors_find_the_events_about_one_object(world):
    """What ``kubectl describe`` asks for: the Events whose involvedObject is the pod."""
    cluster, api = world

    def main():
        stuck, _ = make(api, "stuck"), make(api, "other")
        cluster.sleep(1)
        about_stuck = (f"involvedObject.name=stuck,involvedObject.namespace={NS},"
                       f"involvedObject.kind=Pod,involvedObject.uid={stuck.metadata.uid}")
        return [[(e.involved_object.name, e.reason) for e in api.list_namespaced_event(NS, field_selector=s).items]
                for s in (about_stuck, "involvedObject.name=stuck,type=Normal", "source=default-scheduler,type=Warning",
                          "reason=FailedScheduling,involvedObject.name!=stuck",
                          "reportingComponent=default-scheduler,involvedObject.name=other")]

    stuck, other = ("stuck", "FailedScheduling"), ("other", "FailedScheduling")
    assert cluster.run(main) == [[stuck], [], [other, stuck], [other], [other]]


@pytest.mark.parametrize("call, selector, expected", [
    ("list_node", "spec.unschedulable=false", ["node-1", "node-2", "node-3"]),
    ("list_node", "metadata.name=node-2", ["node-2"]),
    ("list_namespace", "status.phase=Active,metadata.name=default", ["default"]),
])
def test_node_and_namespace_field_selectors(world, call, selector, expected):
    cluster, api = world
    assert names(cluster.run(lambda: getattr(api, call)(field_selector=selector))) == expected


@pytest.mark.parametrize("call, args, selector", [
    ("list_namespaced_event", (NS,), "message=x"),
    ("list_node", (), "metadata.namespace=default"),
    ("list_namespace", (), "spec.finalizers=kubernetes"),
])
def test_each_kind_refuses_the_fields_it_cannot_select_by(world, call, args, selector):
    cluster, api = world
    error = cluster.run(lambda: rejected(getattr(api, call), *args, field_selector=selector))
    field_name = selector.split("=")[0]
    assert (error.status, status_of(error)["message"]) == (400, f"field label not supported: {field_name}")


def test_malformed_label_selector_is_400(world):
    cluster, api = world
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, label_selector="app in web"))
    assert (error.status, status_of(error)["reason"]) == (400, "BadRequest")
    assert status_of(error)["message"] == "unable to parse requirement: found 'web' expected: '('"


# -- resourceVersion ---------------------------------------------------------------------------

def two_versions(cluster, api):
    """Create "a", note the list resourceVersion, then create "b": (rv with a only, rv with both).

    Each create is followed by a virtual second, in which the scheduler marks the pod unschedulable
    (its one write), so the versions noted are the latest ones.
    """
    make(api, "a")
    cluster.sleep(1)
    old = api.list_namespaced_pod(NS).metadata.resource_version
    make(api, "b")
    cluster.sleep(1)
    return old, api.list_namespaced_pod(NS).metadata.resource_version


@pytest.mark.parametrize("kwargs", [{}, {"resource_version": "0"}], ids=["unset", "zero"])
def test_unset_and_zero_resource_version_serve_the_latest_state(world, kwargs):
    cluster, api = world
    old, new = cluster.run(two_versions, cluster, api)
    listed = cluster.run(lambda: api.list_namespaced_pod(NS, **kwargs))
    assert (names(listed), listed.metadata.resource_version) == (["a", "b"], new)


@pytest.mark.parametrize("kwargs", [{"resource_version_match": "Exact"}, {"limit": 10}],
                         ids=["match-exact", "with-limit"])
def test_exact_resource_version_serves_the_state_at_that_version(world, kwargs):
    cluster, api = world
    old, new = cluster.run(two_versions, cluster, api)
    listed = cluster.run(lambda: api.list_namespaced_pod(NS, resource_version=old, **kwargs))
    assert (names(listed), listed.metadata.resource_version) == (["a"], old)


@pytest.mark.parametrize("kwargs", [{"resource_version_match": "NotOlderThan"}, {}],
                         ids=["match-not-older-than", "no-match-no-limit"])
def test_not_older_than_serves_the_latest_state(world, kwargs):
    cluster, api = world
    old, new = cluster.run(two_versions, cluster, api)
    listed = cluster.run(lambda: api.list_namespaced_pod(NS, resource_version=old, **kwargs))
    assert (names(listed), listed.metadata.resource_version) == (["a", "b"], new)


def test_exact_list_at_a_compacted_resource_version_is_410_expired(world):
    cluster, api = world
    old, _ = cluster.run(two_versions, cluster, api)
    cluster.compact()
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, resource_version=old,
                                         resource_version_match="Exact"))
    assert error.status == 410
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "The resourceVersion for the provided list is too old.", "reason": "Expired", "code": 410}


def test_resource_version_ahead_of_the_server_is_504_after_three_virtual_seconds(world):
    cluster, api = world

    def main():
        ahead = str(list_rv(api) + 100)
        start = cluster.now
        error = rejected(api.list_namespaced_pod, NS, resource_version=ahead)
        return ahead, error, cluster.now - start, list_rv(api)

    ahead, error, waited, current = cluster.run(main)
    assert (error.status, waited) == (504, 3.0)
    assert error.headers["Retry-After"] == "1"
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"Timeout: Too large resource version: {ahead}, current: {current}", "reason": "Timeout",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    "retryAfterSeconds": 1},
        "code": 504}


def test_resource_version_reached_while_waiting_is_served(world):
    cluster, api = world

    def main():
        wanted = list_rv(api) + 1
        cluster.spawn(lambda: (cluster.sleep(1), make(api, "late")))
        start = cluster.now
        listed = api.list_namespaced_pod(NS, resource_version=str(wanted))
        return wanted, listed, cluster.now - start

    wanted, listed, waited = cluster.run(main)
    assert waited == 1.0 and int(listed.metadata.resource_version) >= wanted
    assert "late" in names(listed)


LIST_OPTIONS_INVALID = {
    "match-without-rv": ({"resource_version_match": "Exact"}, "FieldValueForbidden",
                         "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
    "exact-at-zero": ({"resource_version_match": "Exact", "resource_version": "0"}, "FieldValueForbidden",
                      'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    "unknown-match": ({"resource_version_match": "Newest", "resource_version": "1"}, "FieldValueNotSupported",
                      'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""'),
}


@pytest.mark.parametrize("kwargs, reason, message", LIST_OPTIONS_INVALID.values(), ids=LIST_OPTIONS_INVALID.keys())
def test_invalid_list_options_are_422_on_list_options(world, kwargs, reason, message):
    # kube-apiserver's list handler runs ValidateListOptions and answers errors.NewInvalid on
    # ListOptions.meta.k8s.io (a 422), not a 400.
    cluster, api = world
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, **kwargs))
    assert error.status == 422
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: {message}',
        "reason": "Invalid",
        "details": {"group": "meta.k8s.io", "kind": "ListOptions",
                    "causes": [{"reason": reason, "message": message, "field": "resourceVersionMatch"}]},
        "code": 422}
