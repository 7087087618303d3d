"""Upstream Airflow's unmodified KubernetesExecutor (the cncf-kubernetes provider) as an executor
under test, on the same Runtime seam and simulated cluster as kubesim's own.

Optional: ``pip install -c constraints-airflow.txt -e '.[airflow]'``. Nothing here imports Airflow
until a world asks for it, so kubesim runs without it; ``unavailable_reason()`` says why it cannot
run (None: it can).
"""

from __future__ import annotations

import multiprocessing

from .environment import UpstreamUnavailable, installed_versions, unavailable_reason
from .host import UpstreamConfigError
from .metadb import MirrorError

EXECUTORS = ("kubesim", "airflow")
# What makes a run with upstream's executor impossible before it starts: the user's to fix.
UPSTREAM_INPUT_ERRORS = (UpstreamUnavailable, UpstreamConfigError, MirrorError)


def executor_problem(executors) -> str | None:
    """Why the executors asked for cannot all run here (None: they can)."""
    return unavailable_reason() if "airflow" in executors else None


def worker_context(executors):
    """How worker processes that run these executors start: upstream's worlds need spawned ones,
    since a forked worker would share this process's Airflow home and metadata database (once it
    has one). None: the platform's default."""
    return multiprocessing.get_context("spawn") if "airflow" in executors else None


def host_for(world, seed: int):
    """The upstream host of ``world`` (made on first use)."""
    from .host import UpstreamHost
    if getattr(world, "upstream_host", None) is None:
        world.upstream_host = UpstreamHost(world, seed)
    return world.upstream_host


__all__ = ["EXECUTORS", "UPSTREAM_INPUT_ERRORS", "UpstreamConfigError", "UpstreamUnavailable", "executor_problem",
           "host_for", "worker_context", "installed_versions", "unavailable_reason"]
