"""What the substitutions put in place of upstream's processes, queues, clocks and randomness.

Each stands for one thing an OS process gives upstream's executor, on the active simulation
(``simulation.active()``): the module ``time`` and ``datetime.now`` on the virtual clock, a
``multiprocessing.Manager`` whose queues pickle what is put (as its proxies do) without a server
process, a watcher ``Process`` run as a simulated process instead of a fork, ``secrets.choice``
drawn from the world's seeded RNG, and the DynamicClient's discovery cache in the world's scratch
directory.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import secrets
import time
from collections import deque
from datetime import datetime, timezone

from kubernetes.dynamic import DynamicClient

from .simulation import active

log = logging.getLogger(__name__)


UPTIME = 100_000.0   # monotonic clocks count from boot: the machine has been up about 28 hours


class VirtualTime:
    """Stands for the ``time`` module in upstream's executor modules. ``monotonic`` counts from
    the machine's boot, not from the run's start, as upstream assumes: its first completed-pod
    adoption is due when ``monotonic() - 0`` reaches the check interval, at once on a real host."""

    @staticmethod
    def monotonic() -> float:
        return UPTIME + active().runtime.now()

    perf_counter = monotonic

    @staticmethod
    def time() -> float:
        return active().cluster.utcnow().timestamp()

    @staticmethod
    def sleep(seconds: float) -> None:
        active().runtime.sleep(max(0.0, seconds))

    def __getattr__(self, name):
        return getattr(time, name)


class _IsADatetime(type):
    """``isinstance(x, VirtualDatetime)`` answers as for ``datetime``, as upstream's checks expect."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, datetime)

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub, datetime)


class VirtualDatetime(datetime, metaclass=_IsADatetime):
    """Stands for ``datetime`` in upstream's executor module: ``now()`` is virtual (naive, UTC)."""

    @classmethod
    def now(cls, tz=None) -> datetime:
        now = active().cluster.utcnow()
        return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)

    @classmethod
    def utcnow(cls) -> datetime:
        return active().cluster.utcnow().replace(tzinfo=None)


def virtual_utcnow() -> datetime:
    """Stands for Airflow's ``timezone.utcnow`` (the alive-scheduler cutoff reads it)."""
    return active().cluster.utcnow().astimezone(timezone.utc)


class SeededSecrets:
    """Stands for ``secrets`` behind pod-name suffixes: drawn from the world's seeded RNG."""

    @staticmethod
    def choice(sequence):
        return active().rng.choice(sequence)

    def __getattr__(self, name):
        return getattr(secrets, name)


class PickledQueue:
    """A ``Manager().Queue()`` without the manager: what is put is pickled and unpickled, as it is
    on its way through a proxy, so nothing is shared by reference that would not be in Airflow.
    Upstream only takes with ``get_nowait``; a blocking take could never be woken here."""

    def __init__(self):
        self._items: deque[bytes] = deque()
        self._unfinished = 0

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        self._items.append(pickle.dumps(item))
        self._unfinished += 1

    put_nowait = put

    def get_nowait(self):
        if not self._items:
            raise queue.Empty
        return pickle.loads(self._items.popleft())

    def get(self, block: bool = True, timeout: float | None = None):
        if block and not self._items:
            raise RuntimeError("upstream blocked on an empty manager queue; kubesim's substitute only "
                               "serves get_nowait (a new upstream version may wait on its queues)")
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1

    def join(self) -> None:
        if self._unfinished:
            raise RuntimeError(f"join() on a queue with {self._unfinished} unfinished item(s) would block forever")

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


class SimManager:
    """Stands for ``multiprocessing.Manager()``: its queues, no server process."""

    def Queue(self) -> PickledQueue:  # noqa: N802 (multiprocessing's spelling)
        return PickledQueue()

    JoinableQueue = Queue

    def shutdown(self) -> None:
        """Nothing to stop: there is no manager process."""


class SimMultiprocessing:
    """Stands for the ``multiprocessing`` module in upstream's executor modules."""

    Manager = SimManager

    def __getattr__(self, name):
        return getattr(multiprocessing, name)


def discovery_client(api_client, *args, **kwargs) -> DynamicClient:
    """Stands for ``DynamicClient``: its discovery cache in the world's scratch directory, so no run
    reads what another discovered (by default it is a file in the machine's temp directory)."""
    kwargs.setdefault("cache_file", str(active().scratch / "discovery-cache.json"))
    return DynamicClient(api_client, *args, **kwargs)


# -- the watcher, a simulated process ----------------------------------------------------------

def start_watcher(watcher) -> None:
    """``Process.start`` for the watcher: a simulated process with a copy of its parent's memory,
    owned by the adapter that is running upstream's code."""
    simulation = active()
    owner = simulation.owner
    watcher._kubesim_owner = owner
    handle = simulation.runtime.spawn(run_watcher, watcher, owner, name=f"airflow-watcher-{watcher.namespace}")
    simulation.fork_memory(simulation.current_process(), handle)
    watcher._kubesim_handle = handle
    if owner is not None:
        owner.watcher_started(watcher)


def run_watcher(watcher, owner) -> None:
    """The watcher's process body: ``run()``; an exception ends the process (exit code 1) and is
    written out as multiprocessing writes it, and nothing else sees it."""
    try:
        watcher.run()
        watcher._kubesim_exitcode = 0
    except Exception as exc:  # the process dies alone; the executor's health check finds it
        watcher._kubesim_exitcode = 1
        log.error("Process %s (watcher of %s) ended with %s: %s", watcher.name, watcher.namespace,
                  type(exc).__name__, exc)
        if owner is not None:
            owner.watcher_died(watcher, exc)


def watcher_is_alive(watcher) -> bool:
    handle = getattr(watcher, "_kubesim_handle", None)
    return handle is not None and handle.is_alive()


def watcher_join(watcher, timeout: float | None = None) -> None:
    handle = getattr(watcher, "_kubesim_handle", None)
    if handle is not None:
        handle.join(timeout)


def watcher_stop(watcher) -> None:
    """``terminate`` and ``kill``: the process ends where it is blocked."""
    handle = getattr(watcher, "_kubesim_handle", None)
    if handle is not None:
        handle.kill()


def watcher_exitcode(watcher):
    return getattr(watcher, "_kubesim_exitcode", None)


class ProcessLocalResourceVersion:
    """Stands for upstream's ``ResourceVersion`` singleton: one dict per simulated process, as a
    module global is per OS process (a watcher starts with a copy of its parent's)."""

    @property
    def resource_version(self) -> dict:
        return active().memory()
