"""kubesim serve over real HTTP: the same API server, its watches as real chunked streams with
their virtual-time semantics, discovery, Table output, and the faults, through the real
kubernetes client (configured from the written kubeconfig) and raw sockets."""

from __future__ import annotations

import json

import kubernetes
import pytest
import urllib3
from kubernetes import watch
from kubernetes.client.rest import ApiException

from fakecluster import ErrorRule, Faults, Outage, ServerOptions, constant
from helpers import LONG_RUN, NS, UNSCHEDULABLE, pod_manifest
from serving import (api_client, connect, dechunk, exchange, get, new_cluster, open_watches, read_all,
                     serving, split_response, wait_for)

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One served cluster for the tests that only add their own pods."""
    with serving(new_cluster(options=ServerOptions(bookmark_interval=2.0))) as server:
        yield server, kubernetes.client.CoreV1Api(api_client(server, tmp_path_factory.mktemp("served")))


def test_discovery_version_openapi_and_health_are_served(served):
    server, _ = served
    status, _, body = split_response(exchange(server, get("/version")))
    assert status == 200 and json.loads(body)["gitVersion"].startswith("v1.")
    assert json.loads(split_response(exchange(server, get("/api")))[2])["versions"] == ["v1"]
    assert json.loads(split_response(exchange(server, get("/apis")))[2]) == {
        "kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "authorization.k8s.io", "versions": [
            {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}], "preferredVersion": {
            "groupVersion": "authorization.k8s.io/v1", "version": "v1"}}]}
    resources = json.loads(split_response(exchange(server, get("/api/v1")))[2])["resources"]
    pods = next(r for r in resources if r["name"] == "pods")
    assert pods["namespaced"] and pods["shortNames"] == ["po"] and "watch" in pods["verbs"]
    assert {r["name"] for r in resources} >= {"pods", "pods/status", "namespaces", "nodes", "events"}
    index = json.loads(split_response(exchange(server, get("/openapi/v3")))[2])
    assert index["paths"]["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    assert split_response(exchange(server, get("/healthz")))[2] == b"ok"


def test_the_real_client_creates_reads_patches_and_deletes_over_http(served):
    _, api = served
    api.create_namespaced_pod(NS, pod_manifest("crud", labels={"app": "crud"}, annotations=UNSCHEDULABLE))
    assert api.read_namespaced_pod("crud", NS).metadata.labels == {"app": "crud"}
    api.patch_namespaced_pod("crud", NS, {"metadata": {"labels": {"tier": "web"}}})   # strategic merge
    listed = api.list_namespaced_pod(NS, label_selector="app=crud,tier in (web)")
    assert [p.metadata.name for p in listed.items] == ["crud"]
    with pytest.raises(ApiException) as again:
        api.create_namespaced_pod(NS, pod_manifest("crud"))
    assert again.value.status == 409 and json.loads(again.value.body)["reason"] == "AlreadyExists"
    api.delete_namespaced_pod("crud", NS)   # unscheduled: deleted at once
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_pod("crud", NS)
    assert json.loads(gone.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "crud" not found', "reason": "NotFound",
        "details": {"name": "crud", "kind": "pods"}, "code": 404}


def test_a_watch_is_a_real_chunked_stream_that_timeout_seconds_ends_cleanly(served):
    server, api = served
    api.create_namespaced_pod(NS, pod_manifest("chunked", labels={"w": "chunked"}, annotations=LONG_RUN))
    raw = exchange(server, get(f"/api/v1/namespaces/{NS}/pods?watch=1&labelSelector=w%3Dchunked&timeoutSeconds=1"))
    status, headers, body = split_response(raw)
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    chunks, clean_end = dechunk(body)
    events = [json.loads(c) for c in chunks]
    assert clean_end and events and all(c.endswith(b"\n") for c in chunks)   # one event per line
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "chunked"


def test_selector_transitions_and_bookmarks_reach_the_client(served):
    server, api = served
    api.create_namespaced_pod(NS, pod_manifest("leaver", labels={"team": "a"}, annotations=UNSCHEDULABLE))
    seen = []
    stream = watch.Watch().stream(api.list_namespaced_pod, NS, label_selector="team=a", timeout_seconds=5,
                                  allow_watch_bookmarks=True)
    for event in stream:
        seen.append(event["type"])
        if seen == ["ADDED"]:
            api.patch_namespaced_pod("leaver", NS, {"metadata": {"labels": {"team": "b"}}})
        if "BOOKMARK" in seen and "DELETED" in seen:
            break
    changes = [kind for kind in seen if kind != "BOOKMARK"]
    assert changes[:2] == ["ADDED", "DELETED"] and "BOOKMARK" in seen   # left the selector: DELETED


def test_a_watch_from_a_compacted_resource_version_gets_the_410_error_event(served):
    server, api = served
    old = api.list_namespaced_pod(NS).metadata.resource_version
    api.create_namespaced_pod(NS, pod_manifest("bump", annotations=UNSCHEDULABLE))
    server.call(lambda: server.cluster.compact())
    with pytest.raises(ApiException) as expired:
        for _ in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=old, timeout_seconds=5):
            pass
    assert expired.value.status == 410 and "too old resource version" in expired.value.reason


def test_a_client_that_leaves_a_watch_closes_it_on_the_server(served):
    server, api = served
    before = open_watches(server)
    response = api.list_namespaced_pod(NS, watch=True, _preload_content=False)
    wait_for(lambda: open_watches(server) == before + 1, "the watch to open")
    response.close()
    response.release_conn()
    wait_for(lambda: open_watches(server) == before, "the server to close the abandoned watch")


def test_table_output_for_lists_single_objects_and_watches(served):
    server, api = served
    api.create_namespaced_pod(NS, pod_manifest("tabled", labels={"t": "1"}, annotations=UNSCHEDULABLE))
    status, _, body = split_response(exchange(server, get(f"/api/v1/namespaces/{NS}/pods/tabled", f"Accept: {TABLE}\r\n")))
    table = json.loads(body)
    assert status == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:3] == ["tabled", "0/1", "Pending"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    raw = exchange(server, get(f"/api/v1/namespaces/{NS}/pods?watch=1&labelSelector=t%3D1&timeoutSeconds=1",
                               f"Accept: {TABLE}\r\n"))
    event = json.loads(dechunk(split_response(raw)[2])[0][0])
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][0] == "tabled"


def test_a_kept_alive_connection_serves_requests_one_after_another(served):
    server, _ = served
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: kubesim\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            length = int(split_response(head)[1]["content-length"])
            body = b""
            while len(body) < length:
                body += sock.recv(length - len(body))
            assert json.loads(body)["kind"] == "NamespaceList"


# -- faults apply as in virtual time -------------------------------------------------------------

def test_api_latency_and_injected_errors_apply_over_http(tmp_path):
    faults = Faults(latency={"create": constant(2.0)},
                    errors=[ErrorRule(429, verbs=("create",), count=1, retry_after=3)])
    with serving(new_cluster(faults=faults)) as server:
        api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
        with pytest.raises(ApiException) as throttled:
            api.create_namespaced_pod(NS, pod_manifest("late"))
        assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "3"
        body = throttled.value.body
        assert (body if isinstance(body, bytes) else body.encode()).strip() == b"Too many requests, please try again later."
        sent = server.driver.virtual_now()
        api.create_namespaced_pod(NS, pod_manifest("late", annotations=UNSCHEDULABLE))
        assert server.driver.virtual_now() - sent >= 2.0   # the answer waited for the latency
        assert server.gateway.calls[("create", 429)] == 1 and server.gateway.calls[("create", 201)] == 1


def test_a_refused_outage_drops_the_connection_without_an_answer(tmp_path):
    with serving(new_cluster(faults=Faults(outages=[Outage(0, 10_000, mode="refused")]))) as server:
        pool = urllib3.PoolManager(retries=False)
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pool.request("GET", f"{server.url}/api/v1/namespaces")
        assert server.gateway.calls[("list", "refused")] == 1


def test_a_stalled_watch_sends_nothing_and_the_client_hits_its_read_timeout(tmp_path):
    with serving() as server:
        api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
        response = api.list_namespaced_pod(NS, watch=True, _preload_content=False, _request_timeout=(5, 0.3))
        wait_for(lambda: open_watches(server) == 1, "the watch to open")
        server.call(lambda: server.cluster.stall_watches(None))
        api.create_namespaced_pod(NS, pod_manifest("unseen", annotations=UNSCHEDULABLE))
        received = []
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            for data in response.stream():
                received.append(data)
        assert received == []   # the ADDED event was held back: not a byte reached the client
        response.release_conn()
        wait_for(lambda: open_watches(server) == 0, "the stalled watch to be closed from the client side")


def test_dropped_and_expired_watches_break_the_stream_as_in_virtual_time(tmp_path):
    with serving() as server:
        api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
        response = api.list_namespaced_pod(NS, watch=True, _preload_content=False)
        wait_for(lambda: open_watches(server) == 1, "the watch to open")
        server.call(server.cluster.drop_watches)
        with pytest.raises(urllib3.exceptions.ProtocolError):
            for _ in response.stream():
                pass
        response = api.list_namespaced_pod(NS, watch=True, _preload_content=False)
        wait_for(lambda: open_watches(server) == 1, "the second watch to open")
        server.call(server.cluster.expire_watches)
        lines = b"".join(response.stream()).splitlines()
        error = json.loads(lines[-1])
        assert error["type"] == "ERROR" and error["object"]["code"] == 410 and error["object"]["reason"] == "Expired"


def test_a_served_scenario_keeps_its_fault_timeline(tmp_path):
    from scenarios.loader import load
    from scenarios.serve import served_cluster
    path = tmp_path / "faulty.yaml"
    path.write_text("name: faulty\nseed: 5\ncluster: {nodes: 2}\nfaults:\n"
                    "  - {at: 50, expire_watches: {}}\n"
                    "  - {at: 50, restart_scheduler: {}}\n"
                    "  - {api_errors: {code: 500, verbs: [delete], count: 1}}\n", encoding="utf-8")
    cluster, notes = served_cluster(load(path)[0], seed=None)
    assert notes == ["skipped restart_scheduler at 50s: serve runs no executor of its own"]
    with serving(cluster, speed=100) as server:
        api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
        response = api.list_namespaced_pod(NS, watch=True, timeout_seconds=500, _preload_content=False)
        lines = b"".join(response.stream()).splitlines()
        assert json.loads(lines[-1])["object"]["code"] == 410   # the expiry at t=50 ended it
        api.create_namespaced_pod(NS, pod_manifest("victim", annotations=UNSCHEDULABLE))
        with pytest.raises(ApiException) as failed:
            api.delete_namespaced_pod("victim", NS)
        assert failed.value.status == 500 and server.call(lambda: len(server.cluster.nodes)) == 2


def test_expect_100_continue_is_answered_before_the_body_is_sent(served):
    server, _ = served
    body = json.dumps(pod_manifest("continued", annotations=UNSCHEDULABLE)).encode()
    with connect(server) as sock:
        sock.sendall(f"POST /api/v1/namespaces/{NS}/pods HTTP/1.1\r\nHost: kubesim\r\nConnection: close\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     f"Expect: 100-continue\r\n\r\n".encode())
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, created = split_response(read_all(sock))
    assert status == 201 and json.loads(created)["metadata"]["name"] == "continued"
