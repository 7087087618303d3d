"""The world upstream's executor runs in: the clock, the seeded RNG, the cluster and scratch space
that the substitutions (``substitutions.py``) hand it while a simulated world is active.

Upstream's modules are global to the process, so one world at a time is active: the one whose
host was built last. Each simulated OS process (a scheduler, a watcher) keeps its own memory of
what upstream keeps in module globals (``ResourceVersion``), as separate processes would.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes
import urllib3

from .environment import airflow_home


class NoActiveWorld(RuntimeError):
    """Upstream's executor was used outside a simulated world built for it."""


class Simulation:
    """One world's clock, RNG, cluster and scratch directory, as upstream's substitutes see them."""

    def __init__(self, cluster, seed: int, retry_configuration: dict | None = None):
        self.cluster = cluster
        self.runtime = cluster.runtime
        self.rng = random.Random(seed)
        self.scratch = Path(tempfile.mkdtemp(prefix="world-", dir=airflow_home()))   # removed at exit with it
        self.retry_configuration = retry_configuration or {}
        self.owner = None            # the adapter whose upstream code is running now
        self._memory: dict[Any, dict] = {}   # simulated process -> its ResourceVersion dict

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    @contextmanager
    def acting_for(self, owner):
        """Upstream code run inside this block belongs to ``owner`` (its watchers, its counts)."""
        previous, self.owner = self.owner, owner
        try:
            yield
        finally:
            self.owner = previous

    # -- per-process memory (what a fork copies) ---------------------------------------------------

    def current_process(self):
        return self.cluster.kernel.current()

    def memory(self, process=None) -> dict:
        """The ResourceVersion dict of ``process`` (default: the one running now)."""
        process = self.current_process() if process is None else process
        return self._memory.setdefault(process, {})

    def fork_memory(self, parent, child) -> None:
        """A child process starts with a copy of its parent's memory, as after fork()."""
        self._memory[child] = dict(self.memory(parent))


_ACTIVE: Simulation | None = None


def activate(simulation: Simulation) -> None:
    global _ACTIVE
    if _ACTIVE is not None and _ACTIVE is not simulation:
        _ACTIVE.close()
    _ACTIVE = simulation


def active() -> Simulation:
    if _ACTIVE is None:
        raise NoActiveWorld("upstream's KubernetesExecutor runs only inside a kubesim world built for it "
                            "(scenarios.upstream.UpstreamHost); none is active")
    return _ACTIVE


def kube_client() -> kubernetes.client.CoreV1Api:
    """The ``[kubernetes_executor] client_factory`` kubesim configures: a CoreV1Api on the active
    world's cluster, set up as upstream's ``get_kube_client`` sets up its own (the urllib3 Retry
    from ``api_client_retry_configuration``)."""
    simulation = active()
    configuration = kubernetes.client.Configuration()
    configuration.retries = urllib3.util.Retry(**simulation.retry_configuration)
    return kubernetes.client.CoreV1Api(simulation.cluster.api_client(configuration))
