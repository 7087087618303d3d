"""``serve()``: a FakeCluster on loopback HTTP in real time, and a kubeconfig to reach it.

>>> server = serve(FakeCluster(seed=1), port=0, speed=10)   # 10 virtual seconds per wall second
>>> server.write_kubeconfig("kubesim.kubeconfig")
>>> server.call(lambda: len(server.cluster.pods()))          # look inside from the right thread
>>> server.stop()
"""

from __future__ import annotations

import math
import random
import socket
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ..api.server import ApiServer
from ..faults import Faults
from ..kernel.engine import Kernel
from ..kernel.realtime import RealtimeDriver
from .gateway import Gateway
from .httpapi import HttpApi
from .httpfront import HttpFrontDoor
from .httpwire import HttpLimits


class Servable(Protocol):
    """What the HTTP door needs of a world (a ``FakeCluster`` has it all)."""
    kernel: Kernel
    server: ApiServer
    rng: random.Random
    faults: Faults

    def utcnow(self) -> datetime: ...


class HttpServer:
    """A FakeCluster served over HTTP in real time; ``serve()`` makes one and starts it."""

    def __init__(self, cluster: Servable, host: str = "127.0.0.1", port: int = 0, speed: float = 1.0,
                 limits: HttpLimits | None = None):
        self.cluster = cluster
        cluster.kernel.horizon = math.inf   # the wall clock bounds a real-time run, not a horizon
        self.limits = limits or HttpLimits()
        self.driver = RealtimeDriver(cluster.kernel, speed)
        listener = socket.create_server((host, port), backlog=128)
        self.host, self.port = listener.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.api = HttpApi(cluster.server, cluster.utcnow, f"{self.host}:{self.port}")
        gateway = Gateway(self.api, cluster.kernel, cluster.rng, cluster.faults)
        gateway.record_log = False   # a long-running server keeps counts, not every call
        self.gateway = gateway
        self.front = HttpFrontDoor(listener, gateway, self.api, self.driver, self.limits)
        self._stopped = False

    def start(self) -> "HttpServer":
        self.driver.start()
        self.front.start()
        return self

    def call(self, fn, timeout: float = 10.0):
        """Run ``fn()`` in the simulation thread (the only safe place to look at the cluster)."""
        return self.driver.call(fn, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.front.stop(timeout)
        self.driver.stop(timeout)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        return write_kubeconfig(path, self.url, namespace)

    def __enter__(self) -> "HttpServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(cluster: Servable, port: int = 0, speed: float = 1.0, limits: HttpLimits | None = None,
          host: str = "127.0.0.1") -> HttpServer:
    """Serve ``cluster`` on http://host:port (0: a free port) at ``speed`` virtual seconds per
    wall second. From then on only the server's thread may touch the cluster: use ``call``."""
    return HttpServer(cluster, host, port, speed, limits).start()


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: kubesim
  cluster:
    server: {url}
contexts:
- name: kubesim
  context:
    cluster: kubesim
    user: kubesim
    namespace: {namespace}
current-context: kubesim
users:
- name: kubesim
  user:
    token: kubesim
"""


def write_kubeconfig(path: str | Path, url: str, namespace: str = "default") -> Path:
    """A kubeconfig with one context, ``kubesim``, for the server at ``url``."""
    path = Path(path).resolve()
    path.write_text(KUBECONFIG.format(url=url, namespace=namespace), encoding="utf-8")
    return path
