"""Watch semantics as the real kubernetes client sees them, in virtual time.

Every test drives the real ``CoreV1Api`` and ``kubernetes.watch.Watch`` through the fake urllib3
pool; the suite runs under both client generations (36.x classic, 37.x pydantic).
"""

from __future__ import annotations

import json

import kubernetes
import pytest
from kubernetes import watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from fakecluster import FakeCluster, ServerOptions

NS = "default"
LONG_RUN = {"kubesim.io/run-seconds": "3600"}


# -- small helpers (kept here: nothing below mocks the client) ---------------------------------

def pod_manifest(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": dict(labels or {}),
                         "annotations": {**LONG_RUN, **(annotations or {})}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]}}


def world(seed: int = 7, **kw):
    cluster = FakeCluster(seed=seed, **kw)
    return cluster, kubernetes.client.CoreV1Api(cluster.api_client())


def create(api, name: str, **kw) -> dict:
    return api.api_client.sanitize_for_serialization(api.create_namespaced_pod(NS, pod_manifest(name, **kw)))


def patch_labels(api, name: str, labels: dict) -> str:
    """Patch labels; returns the new resourceVersion."""
    return api.patch_namespaced_pod(name, NS, {"metadata": {"labels": labels}}).metadata.resource_version


def list_rv(api) -> str:
    return api.list_namespaced_pod(NS).metadata.resource_version


def stream(api, **kw) -> list[tuple[str, dict]]:
    """(type, raw object) of every event Watch.stream yields until the stream ends."""
    return [(e["type"], e["raw_object"]) for e in watch.Watch().stream(api.list_namespaced_pod, NS, **kw)]


def raw_watch(api, **kw) -> tuple[int, list[dict]]:
    """A low-level watch: HTTP status and every JSON line of the body, read to its end."""
    resp = api.list_namespaced_pod(NS, watch=True, _preload_content=False, **kw)
    try:
        body = resp.read()
    finally:
        resp.close()
    return resp.status, [json.loads(line) for line in body.decode().splitlines() if line]


def name_of(obj: dict) -> str:
    return obj["metadata"]["name"]


def rv_of(obj: dict) -> str:
    return obj["metadata"]["resourceVersion"]


def settled(cluster, api, *names, seconds: float = 1.0, **kw) -> None:
    """Create long-running pods and let them reach Running."""
    for name in names:
        create(api, name, **kw)
    cluster.sleep(seconds)


def watchers(cluster) -> int:
    return cluster.server.pods.watchers.count


# -- 1. synthetic ADDED vs exact resourceVersion ----------------------------------------------

@pytest.mark.parametrize("rv", [None, "0"], ids=["rv-unset", "rv-0"])
def test_watch_without_exact_rv_starts_with_synthetic_added_for_existing_pods(rv):
    cluster, api = world()

    def main():
        settled(cluster, api, "b", "a", "c")
        current = {p.metadata.name: p.metadata.resource_version for p in api.list_namespaced_pod(NS).items}
        kw = {} if rv is None else {"resource_version": rv}
        return current, stream(api, timeout_seconds=5, **kw)

    current, events = cluster.run(main)
    assert [(t, name_of(o)) for t, o in events] == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert {name_of(o): rv_of(o) for _, o in events} == current
    assert all(o["status"]["phase"] == "Running" for _, o in events)


def test_watch_from_exact_rv_sends_only_later_changes_and_no_synthetic_added():
    cluster, api = world()

    def main():
        settled(cluster, api, "a", "b", "c")
        start = list_rv(api)
        patched = patch_labels(api, "b", {"tier": "gpu"})
        api.delete_namespaced_pod("c", NS, grace_period_seconds=0)
        return start, patched, stream(api, resource_version=start, timeout_seconds=5)

    start, patched, events = cluster.run(main)
    assert [(t, name_of(o)) for t, o in events] == [("MODIFIED", "b"), ("DELETED", "c")]
    assert rv_of(events[0][1]) == patched
    assert events[0][1]["metadata"]["labels"] == {"tier": "gpu"}
    assert all(int(rv_of(o)) > int(start) for _, o in events)


# -- 2. a resourceVersion older than the window: 410 ------------------------------------------

def _expire_window(cluster, api, name: str = "a") -> tuple[str, list[str]]:
    """List, then push more pod changes than the 5-event window holds; (list RV, patch RVs)."""
    settled(cluster, api, name)
    start = list_rv(api)
    return start, [patch_labels(api, name, {"n": str(i)}) for i in range(7)]


def test_watch_older_than_window_gets_200_then_exactly_one_410_error_event_and_the_end():
    cluster, api = world(watch_cache_size=5)

    def main():
        start, patches = _expire_window(cluster, api)
        began = cluster.now
        return start, patches, raw_watch(api, resource_version=start, timeout_seconds=60), cluster.now - began

    start, patches, (status, lines), took = cluster.run(main)
    assert status == 200
    # the window holds the last five changes; the oldest servable RV is one below the first
    floor = int(patches[2]) - 1
    assert lines == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {start} ({floor})", "reason": "Expired", "code": 410}}]
    assert took == 0  # the body ended at once, not at timeoutSeconds
    assert watchers(cluster) == 0


def test_watch_error_line_is_one_json_object_per_line_on_the_wire():
    cluster, api = world(watch_cache_size=5)

    def main():
        start, _ = _expire_window(cluster, api)
        resp = api.list_namespaced_pod(NS, watch=True, resource_version=start, timeout_seconds=60,
                                       _preload_content=False)
        try:
            return b"".join(resp.stream(amt=None, decode_content=False))
        finally:
            resp.close()

    body = cluster.run(main)
    assert body.endswith(b"}\n") and body.count(b"\n") == 1
    assert b'"reason":"Expired"' in body and b'"code":410' in body


def test_410_raises_api_exception_from_watch_stream_when_timeout_seconds_disables_retries():
    cluster, api = world(watch_cache_size=5)

    def main():
        start, _ = _expire_window(cluster, api)
        with pytest.raises(ApiException) as caught:
            stream(api, resource_version=start, timeout_seconds=60)
        return start, caught.value

    start, error = cluster.run(main)
    assert error.status == 410
    assert error.reason.startswith(f"Expired: too old resource version: {start} (")
    assert [c.verb for c in cluster.gateway.log].count("watch") == 1


def test_410_without_timeout_seconds_is_retried_once_from_the_same_rv_then_raised():
    cluster, api = world(watch_cache_size=5)

    def main():
        start, _ = _expire_window(cluster, api)
        with pytest.raises(ApiException) as caught:
            stream(api, resource_version=start)
        return caught.value

    error = cluster.run(main)
    assert error.status == 410
    assert [(c.verb, c.status) for c in cluster.gateway.log if c.verb == "watch"] == [("watch", 200)] * 2


def test_deserialize_false_yields_raw_dicts_and_the_410_still_ends_the_watch():
    cluster, api = world(watch_cache_size=5)

    def main():
        settled(cluster, api, "a")
        start = list_rv(api)
        patch_labels(api, "a", {"raw": "yes"})
        raw = list(watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=start,
                                        timeout_seconds=1, deserialize=False))
        start, _ = _expire_window(cluster, api, "b")
        # kubernetes 36.0.3 / 37.0.2 look up event["raw_object"] on an ERROR event, which only
        # the deserialising path sets: the 410 surfaces as KeyError there (an upstream bug).
        with pytest.raises((ApiException, KeyError)) as caught:
            list(watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=start,
                                      timeout_seconds=60, deserialize=False))
        return raw, caught.value

    raw, error = cluster.run(main)
    assert [(e["type"], type(e["object"]), e["object"]["metadata"]["labels"]) for e in raw] == [
        ("MODIFIED", dict, {"raw": "yes"})]
    assert getattr(error, "status", 410) == 410 and (isinstance(error, ApiException) or error.args == ("raw_object",))


def test_compaction_expires_older_watch_rvs_but_not_the_current_one():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        start = list_rv(api)
        patched = patch_labels(api, "a", {"x": "1"})
        cluster.compact()
        _, old = raw_watch(api, resource_version=start, timeout_seconds=5)
        _, fresh = raw_watch(api, resource_version=patched, timeout_seconds=5)
        return start, patched, old, fresh

    start, patched, old, fresh = cluster.run(main)
    assert [line["type"] for line in old] == ["ERROR"]
    assert old[0]["object"]["code"] == 410
    assert old[0]["object"]["message"] == f"too old resource version: {start} ({patched})"
    assert fresh == []  # the current RV is still servable: a quiet, clean stream


# -- 3. timeoutSeconds ---------------------------------------------------------------------------

def test_timeout_seconds_ends_the_stream_cleanly_at_that_virtual_time():
    cluster, api = world()

    def main():
        settled(cluster, api, "a", seconds=2.5)
        cluster.spawn(lambda: (cluster.sleep(3), patch_labels(api, "a", {"seen": "yes"})))
        start = cluster.now
        events = stream(api, resource_version=list_rv(api), timeout_seconds=7)
        return start, cluster.now, events

    start, end, events = cluster.run(main)
    assert end == start + 7
    assert [(t, o["metadata"]["labels"]) for t, o in events] == [("MODIFIED", {"seen": "yes"})]
    assert watchers(cluster) == 0


def test_timeout_seconds_body_has_no_terminal_event_on_the_wire():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        start = cluster.now
        status, lines = raw_watch(api, timeout_seconds=4)
        return status, lines, cluster.now - start

    status, lines, took = cluster.run(main)
    assert status == 200 and took == 4
    assert [line["type"] for line in lines] == ["ADDED"]


# -- 4. bookmarks --------------------------------------------------------------------------------

def _bookmark_run(allow: bool):
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        start = list_rv(api)

        def writer():
            for i in range(3):
                cluster.sleep(35)  # 36, 71, 106: never at the same instant as a bookmark
                patch_labels(api, "a", {"step": str(i)})

        cluster.spawn(writer)
        w = watch.Watch()
        seen = []
        for event in w.stream(api.list_namespaced_pod, NS, resource_version=start, timeout_seconds=150,
                              allow_watch_bookmarks=allow):
            obj = event["raw_object"]
            # what a list would say the current resourceVersion is, at the moment of the event
            seen.append((event["type"], obj, list_rv(api)))
        return start, seen, w.resource_version

    return cluster.run(main)


def test_bookmarks_when_asked_carry_the_current_resource_version():
    start, seen, client_rv = _bookmark_run(allow=True)
    bookmarks = [(obj, current) for kind, obj, current in seen if kind == "BOOKMARK"]
    assert len(bookmarks) >= 2
    for obj, current in bookmarks:
        assert obj["kind"] == "Pod" and obj["apiVersion"] == "v1"
        assert obj["metadata"]["resourceVersion"] == current
    assert {obj["metadata"]["resourceVersion"] for obj, _ in bookmarks} - {start}, "bookmarks never advanced"
    # both client generations store the bookmark's RV to resume from
    assert seen[-1][0] == "BOOKMARK" and client_rv == seen[-1][1]["metadata"]["resourceVersion"]
    assert [kind for kind, _, _ in seen].count("MODIFIED") == 3


def test_no_bookmarks_unless_asked():
    _, seen, _ = _bookmark_run(allow=False)
    assert [kind for kind, _, _ in seen] == ["MODIFIED"] * 3


# -- 5. sendInitialEvents ------------------------------------------------------------------------

@pytest.mark.parametrize("from_list_rv", [False, True], ids=["rv-unset", "rv-not-older-than"])
def test_send_initial_events_then_initial_events_end_bookmark(from_list_rv):
    cluster, api = world()

    def main():
        settled(cluster, api, "b", "a")
        current = list_rv(api)
        kw = {"resource_version": current} if from_list_rv else {}
        return current, stream(api, send_initial_events=True, resource_version_match="NotOlderThan",
                               allow_watch_bookmarks=True, timeout_seconds=1, **kw)

    current, events = cluster.run(main)
    assert [(t, name_of(o) if t != "BOOKMARK" else None) for t, o in events] == [
        ("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)]
    end = events[2][1]["metadata"]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert end["resourceVersion"] == current


@pytest.mark.parametrize("spelling", ["true", "True", "1", "t", "TRUE"])
def test_boolean_query_parameters_accept_every_go_parsebool_spelling(spelling):
    """kube-apiserver parses bool query parameters with strconv.ParseBool; the 36.x client
    sends Python's ``True`` (``allowWatchBookmarks=True``), the 37.x client ``true``."""
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        query = (f"watch={spelling}&sendInitialEvents={spelling}&allowWatchBookmarks={spelling}"
                 "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
        resp = api.api_client.rest_client.pool_manager.request(
            "GET", f"{api.api_client.configuration.host}/api/v1/namespaces/{NS}/pods?{query}",
            preload_content=False)
        try:
            return resp.status, resp.read()
        finally:
            resp.close()

    status, body = cluster.run(main)
    assert status == 200
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [line["type"] for line in lines] == ["ADDED", "BOOKMARK"]
    assert lines[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_send_initial_events_without_not_older_than_is_rejected():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        with pytest.raises(ApiException) as caught:
            stream(api, send_initial_events=True, allow_watch_bookmarks=True, timeout_seconds=5)
        return caught.value

    error = cluster.run(main)
    assert error.status == 422
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["reason"] == "Invalid"
    assert "sendInitialEvents" in body["message"] and "NotOlderThan" in body["message"]
    assert watchers(cluster) == 0


# -- 6. selector transitions ---------------------------------------------------------------------

def test_label_selector_transitions_are_deleted_and_added_to_the_watcher():
    cluster, api = world()

    def main():
        settled(cluster, api, "in", labels={"team": "a"})
        settled(cluster, api, "out", labels={"team": "b"})
        start = list_rv(api)
        left = patch_labels(api, "in", {"team": "b"})
        joined = patch_labels(api, "out", {"team": "a"})
        events = stream(api, label_selector="team=a", resource_version=start, timeout_seconds=5)
        return left, joined, events, {p.metadata.name for p in api.list_namespaced_pod(NS).items}

    left, joined, events, still_there = cluster.run(main)
    assert [(t, name_of(o)) for t, o in events] == [("DELETED", "in"), ("ADDED", "out")]
    gone, came = events[0][1], events[1][1]
    # DELETED carries the previous content (it still matched then) at the event's RV
    assert rv_of(gone) == left and gone["metadata"]["labels"] == {"team": "a"}
    assert "deletionTimestamp" not in gone["metadata"]
    assert rv_of(came) == joined and came["metadata"]["labels"] == {"team": "a"}
    assert still_there == {"in", "out"}  # nothing was really deleted


def test_label_selector_watch_ignores_changes_outside_the_selector():
    cluster, api = world()

    def main():
        settled(cluster, api, "mine", labels={"team": "a"})
        settled(cluster, api, "theirs", labels={"team": "b"})
        start = list_rv(api)
        patch_labels(api, "theirs", {"extra": "1"})
        patch_labels(api, "mine", {"extra": "1"})
        return stream(api, label_selector="team in (a)", resource_version=start, timeout_seconds=5)

    events = cluster.run(main)
    assert [(t, name_of(o)) for t, o in events] == [("MODIFIED", "mine")]


def test_field_selector_on_status_phase_follows_the_pod_lifecycle():
    cluster, api = world()

    def main():
        start = list_rv(api)
        create(api, "job", annotations={"kubesim.io/run-seconds": "5"})
        running = stream(api, field_selector="status.phase=Running", resource_version=start, timeout_seconds=60)
        done = stream(api, field_selector="status.phase=Succeeded", resource_version=start, timeout_seconds=1)
        return running, done, api.read_namespaced_pod("job", NS).status.phase

    running, done, phase = cluster.run(main)
    assert phase == "Succeeded"
    kinds = [t for t, _ in running]
    # entering the selector is ADDED, changes inside it MODIFIED, leaving it DELETED
    assert kinds[0] == "ADDED" and kinds[-1] == "DELETED" and set(kinds[1:-1]) <= {"MODIFIED"}
    assert {o["status"]["phase"] for _, o in running} == {"Running"}  # DELETED: the previous content
    assert [(t, o["status"]["phase"]) for t, o in done][:1] == [("ADDED", "Succeeded")]
    assert rv_of(running[-1][1]) == rv_of(done[0][1])  # the same change, seen through two selectors


def test_unsupported_field_selector_is_a_400_not_a_stream():
    cluster, api = world()

    def main():
        with pytest.raises(ApiException) as caught:
            stream(api, field_selector="spec.containers=x", timeout_seconds=5)
        return caught.value

    error = cluster.run(main)
    assert error.status == 400
    assert json.loads(error.body)["reason"] == "BadRequest"


# -- 7. graceful deletion ------------------------------------------------------------------------

def test_graceful_deletion_is_modified_then_terminal_modified_then_deleted():
    cluster, api = world()

    def main():
        settled(cluster, api, "victim", annotations={"kubesim.io/stop-seconds": "2"})
        start = list_rv(api)
        answer = api.delete_namespaced_pod("victim", NS)
        events = stream(api, resource_version=start, timeout_seconds=10)
        return answer, events, api.list_namespaced_pod(NS).items

    answer, events, left = cluster.run(main)
    assert answer.metadata.deletion_timestamp is not None
    shape = [(t, o["status"]["phase"], "deletionTimestamp" in o["metadata"]) for t, o in events]
    assert shape == [("MODIFIED", "Running", True), ("MODIFIED", "Failed", True), ("DELETED", "Failed", True)]
    assert events[0][1]["metadata"]["deletionGracePeriodSeconds"] == 30
    rvs = [int(rv_of(o)) for _, o in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert left == []


@pytest.mark.parametrize("stamped", [True, False])
def test_immediate_deletion_is_deleted_only_with_configurable_deletion_timestamp(stamped):
    cluster, api = world(options=ServerOptions(deleted_event_has_deletion_timestamp=stamped))

    def main():
        settled(cluster, api, "pending", annotations={"kubesim.io/unschedulable": "true"})
        start = list_rv(api)
        api.delete_namespaced_pod("pending", NS)  # unscheduled: grace 0, removed at once
        return stream(api, resource_version=start, timeout_seconds=5)

    events = cluster.run(main)
    assert [t for t, _ in events] == ["DELETED"]
    assert ("deletionTimestamp" in events[0][1]["metadata"]) is stamped


# -- 8. faults mid-stream ------------------------------------------------------------------------

def test_expire_watches_mid_stream_raises_410_from_watch_stream():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        cluster.at(cluster.now + 5, cluster.expire_watches)
        start, seen = cluster.now, []
        with pytest.raises(ApiException) as caught:
            for event in watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=60):
                seen.append(event["type"])
        return seen, caught.value, cluster.now - start

    seen, error, took = cluster.run(main)
    assert seen == ["ADDED"]
    assert error.status == 410 and error.reason.startswith("Expired: too old resource version")
    assert took == 5
    assert watchers(cluster) == 0


@pytest.mark.parametrize("request_timeout", [(1, 10), 10], ids=["connect-read", "total"])
def test_stalled_stream_raises_read_timeout_after_exactly_the_read_timeout(request_timeout):
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        cluster.at(cluster.now + 2, cluster.stall_watches)
        cluster.spawn(lambda: (cluster.sleep(4), patch_labels(api, "a", {"lost": "yes"})))
        seen, last_byte = [], None
        with pytest.raises(ReadTimeoutError):
            for event in watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=300,
                                              _request_timeout=request_timeout):
                seen.append(event["type"])
                last_byte = cluster.now
        return seen, last_byte, cluster.now

    seen, last_byte, now = cluster.run(main)
    assert seen == ["ADDED"]  # the MODIFIED written during the stall never arrived
    assert now == last_byte + 10
    assert watchers(cluster) == 0  # the client closed its response; the server forgot the watcher


def test_stall_shorter_than_the_read_timeout_only_delays_events():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        cluster.at(cluster.now + 1, lambda: cluster.stall_watches(5))
        cluster.spawn(lambda: (cluster.sleep(2), patch_labels(api, "a", {"late": "yes"})))
        start, arrivals = cluster.now, []
        for event in watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=9,
                                          _request_timeout=(1, 10)):
            arrivals.append((event["type"], cluster.now - start))
        return arrivals

    assert cluster.run(main) == [("ADDED", 0), ("MODIFIED", 6)]


def test_dropped_connection_raises_protocol_error():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        cluster.at(cluster.now + 3, cluster.drop_watches)
        start, seen = cluster.now, []
        with pytest.raises(ProtocolError):
            for event in watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=60):
                seen.append(event["type"])
        return seen, cluster.now - start

    seen, took = cluster.run(main)
    assert seen == ["ADDED"] and took == 3
    assert watchers(cluster) == 0


def test_closing_the_response_unregisters_the_server_side_watcher():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        counts = [watchers(cluster)]
        resp = api.list_namespaced_pod(NS, watch=True, timeout_seconds=600, _preload_content=False)
        lines = watch.watch.iter_resp_lines(resp)  # keep it: dropping the reader closes the response
        first = next(lines)
        counts.append(watchers(cluster))
        resp.close()
        counts.append(watchers(cluster))
        gen = watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=600)
        next(gen)
        counts.append(watchers(cluster))
        gen.close()  # a consumer that stops iterating
        counts.append(watchers(cluster))
        patch_labels(api, "a", {"after": "close"})  # fan-out to a closed watcher must not fail
        return json.loads(first)["type"], counts

    first, counts = cluster.run(main)
    assert first == "ADDED"
    assert counts == [0, 1, 0, 1, 0]


# -- 9. a resourceVersion ahead of the server ----------------------------------------------------

def test_watch_from_rv_ahead_of_the_server_gets_504_error_after_3_seconds():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        current = int(list_rv(api))
        start = cluster.now
        status, lines = raw_watch(api, resource_version=str(current + 5), timeout_seconds=60)
        took = cluster.now - start
        with pytest.raises(ApiException) as caught:
            stream(api, resource_version=str(current + 5), timeout_seconds=60)
        return current, status, lines, took, caught.value

    current, status, lines, took, error = cluster.run(main)
    assert status == 200 and took == 3
    assert lines == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"Timeout: Too large resource version: {current + 5}, current: {current}",
        "reason": "Timeout",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                    "retryAfterSeconds": 1},
        "code": 504}}]
    assert error.status == 504 and "Too large resource version" in error.reason


def test_watch_from_rv_ahead_of_the_server_proceeds_when_the_rv_arrives_in_time():
    cluster, api = world()

    def main():
        settled(cluster, api, "a")
        current = int(list_rv(api))

        def writer():
            cluster.sleep(1)
            patch_labels(api, "a", {"step": "1"})   # current + 1: the RV the watch waits for
            cluster.sleep(1)
            patch_labels(api, "a", {"step": "2"})   # current + 2: the first event after it

        cluster.spawn(writer)
        start, arrivals = cluster.now, []
        for event in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=str(current + 1),
                                          timeout_seconds=10):
            arrivals.append((event["type"], rv_of(event["raw_object"]), cluster.now - start))
        return current, arrivals

    current, arrivals = cluster.run(main)
    assert arrivals == [("MODIFIED", str(current + 2), 2)]


# -- 10. both client generations -----------------------------------------------------------------

def test_running_under_a_supported_client_generation():
    major = int(kubernetes.__version__.split(".")[0])
    assert major in (36, 37), kubernetes.__version__
    cluster, api = world()
    events = cluster.run(lambda: (settled(cluster, api, "a"), stream(api, timeout_seconds=1))[1])
    # the model class the client deserialises into differs by generation; the events do not
    assert [(t, name_of(o)) for t, o in events] == [("ADDED", "a")]


def test_a_time_bounded_watch_cache_forgets_changes_older_than_its_window():
    # kube-apiserver keeps about 75 s of events (eventFreshDuration), never fewer than 100.
    cluster = FakeCluster(seed=3, watch_cache_seconds=75)
    api = kubernetes.client.CoreV1Api(cluster.api_client())
    unschedulable = {"kubesim.io/unschedulable": "true"}

    def scenario():
        first = api.create_namespaced_pod("default", {
            "metadata": {"name": "p-0", "annotations": unschedulable},
            "spec": {"containers": [{"name": "base", "image": "busybox:1"}]}})
        for i in range(1, 150):
            api.create_namespaced_pod("default", {
                "metadata": {"name": f"p-{i}", "annotations": unschedulable},
                "spec": {"containers": [{"name": "base", "image": "busybox:1"}]}})
            cluster.sleep(1)
        return int(first.metadata.resource_version)

    first_rv = cluster.run(scenario)
    pods = cluster.server.pods
    assert len(pods.history) >= 100                                   # the lower bound holds
    assert all(c.at >= cluster.now - 75 for c in list(pods.history)[-75:])
    assert pods.floor > first_rv                                      # the oldest changes are gone
    with pytest.raises(kubernetes.client.ApiException) as caught:
        cluster.run(lambda: list(kubernetes.watch.Watch().stream(
            api.list_namespaced_pod, "default", resource_version=str(first_rv), timeout_seconds=5)))
    assert caught.value.status == 410



def test_a_resumed_watch_is_sent_what_a_live_one_got_and_an_exact_list_the_state_then():
    """Replaying from the watch cache and serving a list at an older revision both rebuild what
    was: the same events as a live watch saw, label transitions included, and the old labels."""
    cluster, api = world()
    seen: dict[str, list] = {}

    def main():
        start = list_rv(api)
        live = cluster.spawn(lambda: seen.setdefault("live", raw_watch(api, resource_version=start,
                                                                        timeout_seconds=30)[1]))
        cluster.sleep(0.5)
        create(api, "a", labels={"team": "x"})
        cluster.sleep(1)
        middle = list_rv(api)
        patch_labels(api, "a", {"team": "y"})
        api.delete_namespaced_pod("a", NS, grace_period_seconds=0)
        live.join()
        seen["resumed"] = raw_watch(api, resource_version=start, timeout_seconds=1)[1]
        seen["selected"] = raw_watch(api, resource_version=start, label_selector="team=x", timeout_seconds=1)[1]
        seen["then"] = api.list_namespaced_pod(NS, resource_version=middle, resource_version_match="Exact").items

    cluster.run(main)
    assert seen["resumed"] == seen["live"] and len(seen["live"]) >= 4    # ADDED, ..., DELETED
    assert [e["type"] for e in seen["selected"]][-1] == "DELETED"       # it left the selector
    assert seen["selected"][-1]["object"]["metadata"]["labels"] == {"team": "x"}
    assert [(p.metadata.name, p.metadata.labels) for p in seen["then"]] == [("a", {"team": "x"})]
