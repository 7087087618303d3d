"""The in-memory substitutions that put upstream's unmodified executor on the simulated Runtime.

No upstream file is edited: after import, a few names in upstream's modules are pointed at the
substitutes in ``substitutes.py``. Before any is made, every name is checked to exist and to be
used as this adapter expects (``check``): a provider release that renamed or reworked one fails
with a message naming the provider version and what changed, never a silent wrong simulation.
"""

from __future__ import annotations

import datetime as datetime_module
import inspect
import logging
import multiprocessing
import secrets
import time
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, Callable

from kubernetes.dynamic import DynamicClient

from . import substitutes as sub
from .environment import PROVIDER, UpstreamUnavailable, import_airflow, installed_versions

# The versions this adapter was written against and checked with (kubesim's CI runs them).
SUPPORTED = {
    "apache-airflow": ("3.3.",),
    PROVIDER: ("10.25.",),
}

EXECUTOR = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor"
UTILS = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor_utils"
HELPERS = "airflow.providers.cncf.kubernetes.kubernetes_helper_functions"
TIMEZONE = "airflow.sdk.timezone"


log = logging.getLogger(__name__)


class UnsupportedUpstream(UpstreamUnavailable):
    """The installed provider does not look as this adapter expects."""


@dataclass(frozen=True)
class Substitution:
    module: str
    name: str
    expected: Callable[[Any], bool]   # is the current value what this adapter replaces?
    what: str                         # what it is expected to be, for the error message
    replacement: Callable[[], Any]
    used_in: tuple[str, ...] = ()     # source text that must occur in the module (how it is used)


def _is(obj) -> Callable[[Any], bool]:
    return lambda value: value is obj


def _is_module(module: ModuleType) -> Callable[[Any], bool]:
    return lambda value: value is module or isinstance(value, type(sub)) and value.__name__ == module.__name__


SUBSTITUTIONS = (
    Substitution(EXECUTOR, "time", _is(time), "the time module", sub.VirtualTime,
                 ("time.monotonic()",)),
    Substitution(UTILS, "time", _is(time), "the time module", sub.VirtualTime,
                 ("time.sleep(1)", "time.time()")),
    Substitution(EXECUTOR, "datetime", _is(datetime_module.datetime), "datetime.datetime",
                 lambda: sub.VirtualDatetime, ("datetime.now()",)),
    Substitution(EXECUTOR, "multiprocessing", _is(multiprocessing), "the multiprocessing module",
                 sub.SimMultiprocessing, ("multiprocessing.Manager()", "self._manager.JoinableQueue()")),
    Substitution(UTILS, "multiprocessing", _is(multiprocessing), "the multiprocessing module",
                 sub.SimMultiprocessing, ("multiprocessing.Manager()", "self._manager.Queue()",
                                          "class KubernetesJobWatcher(multiprocessing.Process")),
    Substitution(HELPERS, "secrets", _is(secrets), "the secrets module", sub.SeededSecrets,
                 ("secrets.choice(",)),
    Substitution(EXECUTOR, "DynamicClient", _is(DynamicClient), "kubernetes.dynamic.DynamicClient",
                 lambda: sub.discovery_client, ("DynamicClient(self.kube_client.api_client)",)),
    Substitution(UTILS, "ResourceVersion", lambda v: inspect.isclass(v) and "resource_version" in vars(v),
                 "a singleton class with a resource_version dict", lambda: sub.ProcessLocalResourceVersion,
                 ("ResourceVersion().resource_version[",)),
)

# Methods of the watcher class (a multiprocessing.Process) that make it a simulated process.
WATCHER_METHODS = {"start": sub.start_watcher, "is_alive": sub.watcher_is_alive, "join": sub.watcher_join,
                   "terminate": sub.watcher_stop, "kill": sub.watcher_stop}


def _module(name: str) -> ModuleType:
    import importlib
    return importlib.import_module(name)


def check() -> list[str]:
    """What does not look as expected in the installed upstream (empty: all is as expected)."""
    missing = [f"cannot import {name} ({exc})" for name, exc in _unimportable()]
    if missing:   # an older or reworked Airflow: the checks below would only repeat it
        return missing
    problems = []
    for item in SUBSTITUTIONS:
        module = _module(item.module)
        if not hasattr(module, item.name):
            problems.append(f"{item.module}.{item.name} no longer exists (expected {item.what})")
            continue
        current = getattr(module, item.name)
        if not (item.expected(current) or getattr(current, "_kubesim_substitute", False)
                or current is item.replacement() or isinstance(current, _replacement_type(item))):
            problems.append(f"{item.module}.{item.name} is {current!r}, not {item.what}")
        source = inspect.getsource(module)
        for text in item.used_in:
            if text not in source:
                problems.append(f"{item.module} no longer uses {text!r} (this adapter substitutes "
                                f"{item.name} for that use)")
    problems += _check_watcher() + _check_executor() + _check_timezone()
    return problems


# Modules the adapter drives or substitutes in; Airflow 2.x has no task SDK and no ExecuteTask workloads.
NEEDED_MODULES = (EXECUTOR, UTILS, HELPERS, TIMEZONE, "airflow.executors.workloads",
                  "airflow.dag_processing.bundles.manager")


def _unimportable() -> list[tuple[str, Exception]]:
    found = []
    for name in NEEDED_MODULES:
        try:
            _module(name)
        except ImportError as exc:
            found.append((name, exc))
    return found


def _replacement_type(item: Substitution) -> type:
    made = item.replacement()
    return made if inspect.isclass(made) else type(made)


def _check_watcher() -> list[str]:
    utils = _module(UTILS)
    watcher = getattr(utils, "KubernetesJobWatcher", None)
    if watcher is None:
        return [f"{UTILS}.KubernetesJobWatcher no longer exists"]
    problems = []
    if not issubclass(watcher, multiprocessing.Process):
        problems.append(f"{UTILS}.KubernetesJobWatcher is no longer a multiprocessing.Process")
    for name in ("run", "_run", "process_error", "process_status"):
        if not callable(getattr(watcher, name, None)):
            problems.append(f"KubernetesJobWatcher.{name} no longer exists")
    scheduler = getattr(utils, "AirflowKubernetesScheduler", None)
    if scheduler is None or "kube_watcher.is_alive()" not in inspect.getsource(scheduler):
        problems.append("AirflowKubernetesScheduler no longer health-checks its watchers with is_alive()")
    return problems


def _check_executor() -> list[str]:
    executor = getattr(_module(EXECUTOR), "KubernetesExecutor", None)
    if executor is None:
        return [f"{EXECUTOR}.KubernetesExecutor no longer exists"]
    needed = ("start", "sync", "heartbeat", "end", "terminate", "try_adopt_task_instances", "revoke_task",
              "queue_workload", "get_event_buffer", "_change_state", "_process_workloads")
    problems = [f"KubernetesExecutor.{name} no longer exists" for name in needed if not hasattr(executor, name)]
    if "client_factory" not in inspect.getsource(_module("airflow.providers.cncf.kubernetes.kube_client")):
        problems.append("the [kubernetes_executor] client_factory option is gone (kube_client.py)")
    return problems


def _check_timezone() -> list[str]:
    module = _module(TIMEZONE)
    if not callable(getattr(module, "utcnow", None)):
        return [f"{TIMEZONE}.utcnow no longer exists"]
    source = inspect.getsource(_module(EXECUTOR))
    if "timezone.utcnow() - timedelta(seconds=timeout)" not in source:
        return ["the alive-scheduler cutoff no longer reads timezone.utcnow()"]
    return []


def version_problem() -> str | None:
    """Why the installed versions are outside the supported list (None: they are inside)."""
    versions = installed_versions() or {}
    outside = [f"{name} {versions.get(name, 'missing')} (supported: {', '.join(p + 'x' for p in prefixes)})"
               for name, prefixes in SUPPORTED.items()
               if not any(versions.get(name, "").startswith(p) for p in prefixes)]
    return "; ".join(outside) or None


def refusal(problems: list[str]) -> UnsupportedUpstream:
    """The error naming the installed versions and what changed in them."""
    versions = installed_versions() or {}
    outside = version_problem()
    return UnsupportedUpstream(
        f"{PROVIDER} {versions.get(PROVIDER, '?')} with apache-airflow {versions.get('apache-airflow', '?')} does "
        f"not look as kubesim's adapter expects, so it cannot simulate it faithfully:\n  - "
        + "\n  - ".join(problems)
        + (f"\n(outside the supported versions: {outside}; install a supported one with "
           f"pip install -c constraints-airflow.txt -e '.[airflow]')" if outside else ""))


@cache
def install() -> dict[str, str]:
    """Check the installed upstream, then make every substitution (once per process). Returns the
    versions it runs. Raises UnsupportedUpstream naming the versions and what changed."""
    import_airflow()
    problems = check()
    versions = installed_versions()
    if problems:
        raise refusal(problems)
    outside = version_problem()
    if outside:
        log.warning("upstream outside the versions kubesim checked (%s): every substituted name is as "
                    "expected, so it runs, but no one has compared its simulation with a real one", outside)
    for item in SUBSTITUTIONS:
        setattr(_module(item.module), item.name, item.replacement())
    watcher = _module(UTILS).KubernetesJobWatcher
    for name, method in WATCHER_METHODS.items():
        setattr(watcher, name, method)
    watcher.exitcode = property(sub.watcher_exitcode)
    _module(TIMEZONE).utcnow = sub.virtual_utcnow
    return versions
