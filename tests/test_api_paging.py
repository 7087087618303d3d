"""Chunked lists through the real client: limit/continue, one consistent snapshot across pages,
remainingItemCount, and the 400/410 answers for continue tokens used wrongly or too late."""

from __future__ import annotations

import pytest

from helpers import NS, UNSCHEDULABLE, as_dict, names, new_world, pod_manifest, rejected, status_of

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


@pytest.fixture
def five():
    """(cluster, api) with unschedulable pods p0..p4 (p0, p2, p4 labelled app=even), settled."""
    cluster, api = new_world()

    def main():
        for i in range(5):
            api.create_namespaced_pod(NS, pod_manifest(f"p{i}", labels={"app": "even" if i % 2 == 0 else "odd"},
                                                       annotations=UNSCHEDULABLE))
        cluster.sleep(1)

    cluster.run(main)
    return cluster, api


def meta(api, listed) -> dict:
    return as_dict(api, listed)["metadata"]


def pages(api, **kwargs) -> list[dict]:
    """Every page of a chunked list: (names, metadata) per page."""
    found, token = [], None
    while True:
        listed = api.list_namespaced_pod(NS, _continue=token, **kwargs) if token else \
            api.list_namespaced_pod(NS, **kwargs)
        found.append((names(listed), meta(api, listed)))
        token = meta(api, listed).get("continue")
        if not token:
            return found


def test_pages_cover_the_list_once_in_order(five):
    cluster, api = five
    found = cluster.run(lambda: pages(api, limit=2))
    assert [n for n, _ in found] == [["p0", "p1"], ["p2", "p3"], ["p4"]]


def test_every_page_carries_the_resource_version_of_the_first(five):
    cluster, api = five
    found = cluster.run(lambda: pages(api, limit=2))
    assert len({m["resourceVersion"] for _, m in found}) == 1


def test_remaining_item_count_counts_down_and_the_last_page_has_neither(five):
    cluster, api = five
    found = cluster.run(lambda: pages(api, limit=2))
    assert [m.get("remainingItemCount") for _, m in found] == [3, 1, None]
    assert "continue" not in found[-1][1] or not found[-1][1]["continue"]


@pytest.mark.parametrize("kwargs", [{"label_selector": "app"}, {"field_selector": "status.phase=Pending"}],
                         ids=["label-selector", "field-selector"])
def test_remaining_item_count_is_left_out_with_a_selector(five, kwargs):
    cluster, api = five
    first = cluster.run(lambda: meta(api, api.list_namespaced_pod(NS, limit=2, **kwargs)))
    assert first["continue"] and "remainingItemCount" not in first


def test_selector_pages_hold_only_matches(five):
    cluster, api = five
    found = cluster.run(lambda: pages(api, limit=2, label_selector="app=even"))
    assert [n for n, _ in found] == [["p0", "p2"], ["p4"]]


def test_later_pages_come_from_the_first_pages_snapshot(five):
    cluster, api = five

    def main():
        first = api.list_namespaced_pod(NS, limit=2)
        api.delete_namespaced_pod("p3", NS)
        api.create_namespaced_pod(NS, pod_manifest("p2a", annotations=UNSCHEDULABLE))
        rest = api.list_namespaced_pod(NS, limit=10, _continue=meta(api, first)["continue"])
        return meta(api, first), names(rest), meta(api, rest)

    first, rest, rest_meta = cluster.run(main)
    assert rest == ["p2", "p3", "p4"]       # p3 still there, p2a not yet: the snapshot of page one
    assert rest_meta["resourceVersion"] == first["resourceVersion"]


def test_limit_above_the_count_returns_everything_without_a_token(five):
    cluster, api = five
    listed = cluster.run(lambda: api.list_namespaced_pod(NS, limit=50))
    assert names(listed) == ["p0", "p1", "p2", "p3", "p4"] and not meta(api, listed).get("continue")


def test_all_namespaces_pages_too(five):
    cluster, api = five

    def main():
        api.create_namespaced_pod("kube-system", pod_manifest("k0", annotations=UNSCHEDULABLE))
        first = api.list_pod_for_all_namespaces(limit=4)
        rest = api.list_pod_for_all_namespaces(limit=4, _continue=meta(api, first)["continue"])
        return names(first) + names(rest)

    assert cluster.run(main) == ["p0", "p1", "p2", "p3", "p4", "k0"]


def first_token(api) -> str:
    return meta(api, api.list_namespaced_pod(NS, limit=2))["continue"]


def test_continue_with_a_resource_version_is_400(five):
    cluster, api = five
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, _continue=first_token(api),
                                         resource_version="1"))
    assert error.status == 400
    assert status_of(error) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "specifying resource version is not allowed when using continue",
        "reason": "BadRequest", "code": 400}


def test_continue_with_resource_version_zero_is_a_plain_continuation(five):
    cluster, api = five
    rest = cluster.run(lambda: api.list_namespaced_pod(NS, _continue=first_token(api), resource_version="0"))
    assert names(rest) == ["p2", "p3", "p4"]


def test_continue_with_a_resource_version_match_is_422(five):
    cluster, api = five
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, _continue=first_token(api),
                                         resource_version="1", resource_version_match="NotOlderThan"))
    assert error.status == 422
    assert status_of(error)["details"]["causes"] == [{
        "reason": "FieldValueForbidden", "field": "resourceVersionMatch",
        "message": "Forbidden: resourceVersionMatch is forbidden when continue is provided"}]


def test_a_garbled_continue_token_is_400(five):
    cluster, api = five
    error = cluster.run(lambda: rejected(api.list_namespaced_pod, NS, _continue="not-a-token"))
    assert (error.status, status_of(error)["reason"]) == (400, "BadRequest")
    assert status_of(error)["message"].startswith("invalid continue token: ")


def expired_after(cluster, api, make_it_old) -> tuple:
    """List page one, let ``make_it_old`` happen, continue: (the 410, the list it was issued from)."""
    def main():
        first = api.list_namespaced_pod(NS, limit=2)
        api.create_namespaced_pod(NS, pod_manifest("p9", annotations=UNSCHEDULABLE))
        make_it_old()
        return rejected(api.list_namespaced_pod, NS, limit=2, _continue=meta(api, first)["continue"]), first

    return cluster.run(main)


def test_continue_after_compaction_is_410_with_a_fresh_token(five):
    cluster, api = five
    error, _ = expired_after(cluster, api, cluster.compact)
    body = status_of(error)
    assert error.status == 410
    assert body["message"] == CONTINUE_EXPIRED and body["reason"] == "Expired" and body["code"] == 410
    assert body["metadata"]["continue"]


def test_continue_after_five_virtual_minutes_is_410(five):
    cluster, api = five
    error, _ = expired_after(cluster, api, lambda: cluster.sleep(301))
    body = status_of(error)
    assert (error.status, body["reason"], body["message"]) == (410, "Expired", CONTINUE_EXPIRED)
    assert body["metadata"]["continue"]


def test_continue_within_five_virtual_minutes_still_works(five):
    cluster, api = five

    def main():
        token = first_token(api)
        cluster.sleep(299)
        return names(api.list_namespaced_pod(NS, _continue=token))

    assert cluster.run(main) == ["p2", "p3", "p4"]


def test_the_token_in_a_410_continues_inconsistently_at_the_latest_version(five):
    cluster, api = five
    error, first = expired_after(cluster, api, cluster.compact)
    token = status_of(error)["metadata"]["continue"]
    rest = cluster.run(lambda: api.list_namespaced_pod(NS, _continue=token))
    assert names(rest) == ["p2", "p3", "p4", "p9"]   # p9 was created after page one
    assert int(rest.metadata.resource_version) > int(first.metadata.resource_version)
