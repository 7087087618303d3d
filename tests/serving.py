"""Shared helpers for the ``kubesim serve`` tests: a cluster served over loopback HTTP from a
background thread, real clients on it (the kubernetes client from a written kubeconfig, raw
sockets, kubectl), and waiting with a deadline for what the simulation does in real time.

Every server is stopped at the end of its ``with`` block, and no thread of its may outlive it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import kubernetes
import pytest

from fakecluster import FakeCluster
from fakecluster.doors.httpserver import HttpServer, serve
from fakecluster.doors.httpwire import HttpLimits

SPEED = 20.0        # virtual seconds per wall second: a pod's 10 s run takes half a wall second
DEADLINE = 15.0     # wall seconds: the most any test waits for something that must happen


def new_cluster(**kw) -> FakeCluster:
    kw.setdefault("seed", 1)
    return FakeCluster(horizon=math.inf, trace=False, epoch=datetime.now(timezone.utc).replace(microsecond=0), **kw)


def kubesim_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("kubesim-") and t.is_alive()}


@contextmanager
def serving(cluster: FakeCluster | None = None, speed: float = SPEED, limits: HttpLimits | None = None):
    """A served cluster on a free port; stopped afterwards, with every thread it started gone."""
    before = kubesim_threads()
    server = serve(cluster or new_cluster(), port=0, speed=speed, limits=limits)
    try:
        yield server
    finally:
        server.stop()
        leaked = kubesim_threads() - before
        assert not leaked, f"threads left running after stop: {sorted(t.name for t in leaked)}"


def api_client(server: HttpServer, directory: Path) -> kubernetes.client.ApiClient:
    """A real ApiClient configured from the kubeconfig the server writes (global config untouched)."""
    path = server.write_kubeconfig(directory / "kubeconfig")
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def wait_for(condition, what: str, deadline: float = DEADLINE, every: float = 0.02):
    """Poll ``condition()`` until it returns something truthy (only where no event can be awaited)."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g}s waiting for {what}")
        time.sleep(every)


def open_watches(server: HttpServer) -> int:
    return server.call(lambda: sum(len(list(s.watchers.all())) for s in server.cluster.server.stores.values()))


# -- raw sockets ---------------------------------------------------------------------------------

def connect(server: HttpServer, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(DEADLINE)
    sock.connect((server.host, server.port))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (a reset counts as closed)."""
    data = bytearray()
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    return bytes(data)


def exchange(server: HttpServer, data: bytes) -> bytes:
    """Send raw bytes on a new connection, half-close it, and read the whole answer."""
    with connect(server) as sock:
        sock.sendall(data)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server has already closed it: what it said is still there to read
            pass
        return read_all(sock)


def ask(server: HttpServer, data: bytes) -> bytes:
    """Send a request on a new connection and read the answer, without half-closing first (a
    half-closed client counts as gone, as for Go's net/http, if its answer is slow to come)."""
    with connect(server) as sock:
        sock.sendall(data)
        return read_all(sock)


def get(path: str, headers: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: kubesim\r\nConnection: close\r\n{headers}\r\n".encode()


def split_response(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def dechunk(body: bytes) -> tuple[list[bytes], bool]:
    """The chunks of a chunked body, and whether it ended with the last (zero) chunk."""
    chunks, at = [], 0
    while True:
        line_end = body.find(b"\r\n", at)
        if line_end < 0:
            return chunks, False
        size = int(body[at:line_end], 16)
        if size == 0:
            return chunks, body[line_end:line_end + 4] == b"\r\n\r\n"
        chunks.append(body[line_end + 2:line_end + 2 + size])
        at = line_end + 4 + size


# -- kubectl -------------------------------------------------------------------------------------

def find_kubectl() -> str:
    """kubectl as found on the machine; the tests skip without it, unless CI requires it."""
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("KUBESIM_REQUIRE_KUBECTL") == "1":
            pytest.fail("kubectl is not installed, and KUBESIM_REQUIRE_KUBECTL=1 requires it")
        pytest.skip("kubectl is not installed (set KUBESIM_REQUIRE_KUBECTL=1 to make this a failure)")
    return found


MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {labels}
  annotations: {annotations}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: main
    image: busybox:1.36
"""
RUNS_LONG = {"kubesim.io/run-seconds": "3600"}


class Kubectl:
    def __init__(self, binary: str, kubeconfig, home):
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home),
                    "KUBECACHEDIR": str(home / "cache")}
        self.home = home

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    def fails(self, *args: str) -> str:
        """Run a kubectl command that must fail; its stderr."""
        done = self.run(*args)
        assert done.returncode != 0, f"kubectl {' '.join(args)} succeeded: {done.stdout}"
        return done.stderr

    def table(self, *args: str) -> list[list[str]]:
        return table(self(*args))

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], input=stdin, env=self.env, capture_output=True,
                              text=True, timeout=60)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([self.binary, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def manifest(self, name: str, labels: dict | None = None, annotations: dict | None = None,
                 restart: str = "Always", grace: int = 30) -> str:
        text = MANIFEST.format(name=name, labels=json.dumps(labels or {}), restart=restart, grace=grace,
                               annotations=json.dumps(annotations or RUNS_LONG))
        path = self.home / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return str(path)


def table(output: str) -> list[list[str]]:
    """kubectl's table output as rows of cells (the header first)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def pod(server, name: str, namespace: str = "default") -> dict | None:
    return server.call(lambda: server.cluster.pod(namespace, name))


def wait_pod(server, name: str, check, what: str, namespace: str = "default") -> dict:
    return wait_for(lambda: (lambda p: p if p and check(p) else None)(pod(server, name, namespace)),
                    f"{name}: {what}")


def phase(p: dict) -> str:
    return (p.get("status") or {}).get("phase", "")
