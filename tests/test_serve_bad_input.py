"""kubesim serve against bad clients, with raw sockets: garbage, truncated and oversized requests,
silent and slow clients, too many at once. Each gets an HTTP error (Go's plain text for broken
HTTP, a Kubernetes Status where kube-apiserver writes one) or a closed connection; the server
stays up for everyone else, never writes a traceback, and what it holds per client is bounded."""

from __future__ import annotations

import json
import random
import select
import threading
import tracemalloc

import kubernetes
import pytest
import urllib3
from kubernetes.client.rest import ApiException

from fakecluster import Faults, constant
from fakecluster.doors.httpwire import HttpLimits
from helpers import NS, UNSCHEDULABLE, pod_manifest
from serving import (api_client, ask, connect, dechunk, exchange, get, new_cluster, open_watches, read_all,
                     serving, split_response, wait_for)

QUICK = HttpLimits(max_connections=8, header_timeout=0.5, idle_timeout=2.0, body_timeout=0.5, write_timeout=1.0,
               watch_buffer_bytes=64 * 1024, watch_backlog_bytes=64 * 1024)
LIMIT = 3 * 1024 * 1024
TOO_LARGE = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": f"Request entity too large: limit is {LIMIT}", "reason": "RequestEntityTooLarge",
             "code": 413}
POST_PODS = f"POST /api/v1/namespaces/{NS}/pods HTTP/1.1\r\nHost: kubesim\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def server():
    with serving(limits=QUICK) as served:
        yield served
        assert served.front.stats["internal_errors"] == 0, "a request ended in a traceback"


def still_serving(server) -> None:
    status, _, body = split_response(exchange(server, get("/api/v1/namespaces")))
    assert status == 200 and json.loads(body)["kind"] == "NamespaceList"


@pytest.mark.parametrize("data, status", [
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\r\n\r\n", 400),      # a TLS hello
    (b"\r\n\r\n", 400),                                                          # no request line
    (b"GET /api\r\n\r\n", 400),                                                  # HTTP/0.9
    (b"get /api HTTP/1.1\r\nHost: x\r\n\r\n", 400),                              # lower-case method
    (b"GET /api HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET /a\x01pi HTTP/1.1\r\nHost: x\r\n\r\n", 400),                          # control byte in target
    (b"GET /api HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    (b"GET /api HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400),
    (b"GET /api HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400),          # obsolete line folding
    (b"GET /api HTTP/1.1\r\n\r\n", 400),                                         # no Host
    (b"GET /api HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (POST_PODS.encode() + b"Content-Length: ten\r\n\r\n", 400),
    (POST_PODS.encode() + b"Content-Length: \xb2\r\n\r\n", 400),                # a Latin-1 "digit"
    (POST_PODS.encode() + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (POST_PODS.encode() + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (POST_PODS.encode() + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    (POST_PODS.encode() + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),     # not a chunk size
])
def test_broken_http_gets_go_s_plain_error_and_the_connection_closes(server, data, status):
    answer = exchange(server, data)
    code, headers, body = split_response(answer)
    assert code == status and headers["connection"] == "close"
    assert body.startswith(f"{status} ".encode()) and headers["content-type"].startswith("text/plain")
    still_serving(server)


def test_random_bytes_are_refused_or_dropped_never_a_traceback(server):
    rng = random.Random(6)
    for size in (1, 17, 300, 4096, 70_000):
        answer = exchange(server, rng.randbytes(size))
        assert answer == b"" or answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 "))
    still_serving(server)


def test_a_request_head_over_the_limit_is_431(server):
    answer = exchange(server, b"GET /api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (QUICK.max_header_bytes + 10))
    assert split_response(answer)[0] == 431
    still_serving(server)


def test_bodies_over_3_mib_get_the_413_status_unread(server):
    code, _, body = split_response(exchange(server, POST_PODS.encode() + f"Content-Length: {LIMIT + 1}\r\n\r\n".encode()))
    assert code == 413 and json.loads(body) == TOO_LARGE        # answered before any body byte was sent
    piece = b"x" * (1024 * 1024)
    chunked = POST_PODS.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + b"100000\r\n" + piece + b"\r\n"
    code, _, body = split_response(exchange(server, chunked * 1 + (b"100000\r\n" + piece + b"\r\n") * 3))
    assert code == 413 and json.loads(body) == TOO_LARGE        # counted as it streams in
    still_serving(server)


def test_the_real_client_sending_an_oversized_pod_reads_the_413(server, tmp_path):
    api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
    huge = pod_manifest("huge", annotations={"blob": "x" * LIMIT})
    with pytest.raises(ApiException) as rejected:
        api.create_namespaced_pod(NS, huge)
    assert rejected.value.status == 413 and json.loads(rejected.value.body) == TOO_LARGE


def test_a_malformed_json_body_gets_the_api_server_s_400_status(server):
    body = b'{"kind": "Pod", "metadata": '
    answer = exchange(server, POST_PODS.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    code, _, status = split_response(answer)
    assert code == 400 and json.loads(status)["reason"] == "BadRequest"
    code, _, status = split_response(exchange(server, b"BREW /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert code == 405 and json.loads(status)["reason"] == "MethodNotAllowed"
    code, _, status = split_response(exchange(server, get("/no/such/thing")))
    assert code == 404 and json.loads(status)["message"] == "the server could not find the requested resource"


@pytest.mark.parametrize("data", [
    b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n",                          # head cut short
    POST_PODS.encode() + b"Content-Length: 100\r\n\r\n{\"kind\"",               # body cut short
    POST_PODS.encode() + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"ki",       # chunk cut short
])
def test_a_truncated_request_is_closed_without_an_answer(server, data):
    assert exchange(server, data) == b""          # the client half-closed: nothing more will come
    with connect(server) as sock:                 # and with the connection left open: the timeout
        sock.sendall(data)
        assert read_all(sock) == b""
    still_serving(server)


def test_a_client_that_connects_and_never_sends_is_closed(server):
    with connect(server) as sock:
        assert read_all(sock) == b""              # after header_timeout, not the test's DEADLINE
    with connect(server) as sock:                 # nor one that sends its head a byte at a time
        closed = False
        for byte in b"GET /api HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: 1\r\n" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready and read_all(sock) == b"":
                closed = True
                break
        assert closed
    still_serving(server)


def test_beyond_the_in_flight_limit_a_request_is_answered_429_and_watches_do_not_count():
    slow = new_cluster(faults=Faults(latency={"list": constant(40.0)}))   # two wall seconds at 20x
    with serving(slow, limits=HttpLimits(max_in_flight=1)) as server:
        watches = [connect(server) for _ in range(3)]
        for sock in watches:   # long-running: they hold no place among the requests in flight
            sock.sendall(get(f"/api/v1/namespaces/{NS}/pods?watch=1").replace(b"Connection: close\r\n", b""))
        wait_for(lambda: open_watches(server) == 3, "three watches open")
        assert split_response(ask(server, get("/api")))[0] == 200
        with connect(server) as waiting:
            waiting.sendall(get(f"/api/v1/namespaces/{NS}/pods"))     # held two seconds by its latency
            wait_for(lambda: server.front.stats["peak_in_flight"] == 1, "the slow list in flight")
            with connect(server) as idle:   # nothing is written on accept: a 429 answers a request
                assert select.select([idle], [], [], 0.3)[0] == []
                idle.sendall(get("/api"))
                code, headers, body = split_response(read_all(idle))
            assert code == 429 and headers["retry-after"] == "1"
            assert body == b"Too many requests, please try again later.\n"
            assert split_response(read_all(waiting))[0] == 200
        assert split_response(ask(server, get("/api")))[0] == 200     # the place is free again
        assert server.front.stats["refused_too_many_requests"] == 1
        for sock in watches:
            sock.close()


def test_beyond_the_connection_limit_new_connections_wait_until_one_closes():
    with serving(limits=HttpLimits(max_connections=2, header_timeout=10.0)) as server:
        held = [connect(server) for _ in range(2)]
        wait_for(lambda: server.front.open_connections == 2, "two connections in")
        with connect(server) as waiting:     # in the listen backlog: accepted once a slot frees
            waiting.sendall(get("/api"))
            assert select.select([waiting], [], [], 0.5)[0] == []
            held[0].close()
            assert split_response(read_all(waiting))[0] == 200
        held[1].close()
        assert server.front.stats["peak_connections"] == 2


def test_many_clients_at_once_are_served_or_told_to_retry_and_a_watch_survives(tmp_path):
    with serving(limits=HttpLimits(max_connections=8)) as server:
        api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
        watching = api.list_namespaced_pod(NS, watch=True, _preload_content=False, _request_timeout=(5, 10))
        wait_for(lambda: open_watches(server) == 1, "the watch to open")
        codes, lock = [], threading.Lock()

        def client():
            pool = urllib3.PoolManager(retries=False, timeout=10)
            for _ in range(5):
                try:
                    status = pool.request("GET", f"{server.url}/api/v1/namespaces/{NS}/pods").status
                except urllib3.exceptions.HTTPError:
                    status = "error"
                with lock:
                    codes.append(status)
            pool.clear()

        threads = [threading.Thread(target=client) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(codes) == 200 and set(codes) <= {200, 429} and codes.count(200) >= 5   # served or told to retry
        assert server.front.stats["peak_connections"] <= 8
        assert server.driver.peak_inbox <= 3 * 8      # one request (and one close) per connection
        api.create_namespaced_pod(NS, pod_manifest("after-the-storm", annotations=UNSCHEDULABLE))
        line = next(watching.stream())                  # the watch kept going through it all
        assert json.loads(line.splitlines()[0])["object"]["metadata"]["name"] == "after-the-storm"
        watching.close()
        watching.release_conn()


def test_a_client_that_leaves_before_a_slow_answer_frees_its_slot_and_leaves_nothing_running():
    slow = new_cluster(faults=Faults(latency={"*": constant(10.0)}))   # half a wall second at 20x
    with serving(slow, limits=HttpLimits(max_connections=1)) as server:
        with connect(server) as sock:
            sock.sendall(get(f"/api/v1/namespaces/{NS}/pods?watch=1"))
            wait_for(lambda: server.front.stats["requests"] == 1, "the request to be read")
        wait_for(lambda: server.front.open_connections == 0, "the slot to be freed")
        assert split_response(ask(server, get("/api")))[0] == 200     # not a 429: the slot is free
        stranded = lambda: [p.name for p in server.cluster.kernel.blocked if p.name.startswith("http ")]  # noqa: E731
        wait_for(lambda: not server.call(stranded) and open_watches(server) == 0, "the late watch to be closed")


def test_a_watch_client_that_stops_reading_is_closed_and_its_buffers_stay_bounded(server):
    blob = {"kubesim.io/unschedulable": "true", "padding": "p" * 8000}
    with connect(server, rcvbuf=4096) as sock:
        sock.sendall(get(f"/api/v1/namespaces/{NS}/pods?watch=1&labelSelector=slow%3Dreader"))
        wait_for(lambda: open_watches(server) >= 1, "the watch to open")

        def create(batch):   # two pods a turn: what one turn writes fits the backlog limit
            for i in range(2):
                body = json.dumps(pod_manifest(f"slow-{batch}-{i}", labels={"slow": "reader"}, annotations=blob))
                server.cluster.request("POST", f"/api/v1/namespaces/{NS}/pods", body.encode(),
                                       {"Content-Type": "application/json"})

        created = 0
        while open_watches(server) and created < 800:   # 8 KB events: soon more than all buffers hold
            server.call(lambda batch=created: create(batch))
            created += 2
        wait_for(lambda: open_watches(server) == 0, "the server to close the slow watcher")
        _, clean_end = dechunk(split_response(read_all(sock))[2])
    assert not clean_end                     # the stream was cut off, not finished
    stats = server.front.stats
    assert stats["watches_dropped"] + stats["watch_clients_lost"] >= 1
    assert stats["peak_watch_buffer_bytes"] <= QUICK.watch_buffer_bytes + 10_000   # + one event


def test_memory_stays_flat_across_hundreds_of_bad_clients(server):
    rng = random.Random(3)
    abuse = [lambda: exchange(server, rng.randbytes(512)),
             lambda: exchange(server, b"GET /api HTTP/1.1\r\n\r\n"),
             lambda: exchange(server, POST_PODS.encode() + f"Content-Length: {LIMIT * 2}\r\n\r\n".encode()),
             lambda: exchange(server, POST_PODS.encode() + b"Content-Length: 50\r\n\r\n{")]
    for i in range(40):                   # warm up caches and pools first
        abuse[i % len(abuse)]()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(400):
            abuse[i % len(abuse)]()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1024 * 1024, f"{grown} bytes still held after 400 bad clients"
    still_serving(server)


def test_an_https_client_is_answered_at_once_so_its_tls_layer_fails_fast(server):
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)   # the start of a TLS ClientHello
    with connect(server) as sock:
        sock.sendall(hello)
        ready, _, _ = select.select([sock], [], [], 1.0)   # not after the 10 s header timeout
        assert ready and split_response(read_all(sock))[:1] == (400,)
    still_serving(server)
