"""``kubesim serve``: a scenario's cluster (or a default one) on loopback HTTP, in real time.

It serves the cluster and the scenario's fault timeline, not its executor or workload: the
point is a client in another process (kubectl, an executor of your own). So the faults that
act on the in-process executor (restart_scheduler, start_scheduler) are skipped with a note;
the workload's behaviour model (run times, failures, image errors) still decides how every
pod behaves. Virtual time starts at the wall clock's now and runs ``--speed`` times faster.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from fakecluster import FakeCluster
from fakecluster.doors.httpserver import HttpServer, serve

from .build import build_cluster, schedule_fault
from .loader import LoadedScenario, ScenarioError, load, select_variant

BAD_INPUT = 2
EXECUTOR_FAULTS = ("restart_scheduler", "start_scheduler", "crash_scheduler", "stop_scheduler",
                   "stall_scheduler")
DEFAULT_KUBECONFIG = "kubesim.kubeconfig"


def served_cluster(loaded: LoadedScenario | None, seed: int | None,
                   speed: float = 1.0) -> tuple[FakeCluster, list[str]]:
    """The cluster to serve and notes on what of the scenario is left out. Its timestamps follow
    the wall clock (``time_scale=speed``): at or before it, never in the future."""
    options = dict(epoch=datetime.now(timezone.utc).replace(microsecond=0), horizon=math.inf, trace=False,
                   time_scale=speed)
    if loaded is None:
        return FakeCluster(seed=seed or 0, **options), []
    scenario = loaded.scenario
    cluster = build_cluster(scenario, scenario.seed if seed is None else seed, **options)
    world = SimpleNamespace(cluster=cluster)  # a fault timeline needs nothing but the cluster
    notes = []
    for fault in scenario.faults:
        if fault.action in EXECUTOR_FAULTS:
            notes.append(f"skipped {fault.action} at {fault.at:g}s: serve runs no executor of its own")
            continue
        schedule_fault(world, fault)
    return cluster, notes


def one_scenario(path: Path, variant: str | None) -> LoadedScenario:
    chosen = select_variant(load(path), variant)
    if len(chosen) != 1:
        known = ", ".join(s.variant for s in chosen)
        raise ScenarioError(path, [(None, "matrix", "the file has several variants: pick one with "
                                                     f"--variant; known: {known}")])
    return chosen[0]


def cmd_serve(args, console) -> int:
    if not (math.isfinite(args.speed) and args.speed > 0):
        return refuse(f"--speed must be a number > 0, not {args.speed:g}")
    if not 0 <= args.port <= 65535:
        return refuse(f"--port must be between 0 and 65535, not {args.port}")
    loaded = one_scenario(args.file, args.variant) if args.file else None
    cluster, notes = served_cluster(loaded, args.seed, args.speed)
    try:
        server = serve(cluster, port=args.port, speed=args.speed)
    except OSError as exc:
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        return refuse(f"cannot listen on 127.0.0.1:{args.port}: {why}")
    try:
        with sigterm_as_interrupt():
            kubeconfig = server.write_kubeconfig(args.kubeconfig)
            announce(server, loaded, kubeconfig, notes, args.until)
            wait(server, args.until)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print(f"kubesim serve: stopped at virtual t={server.driver.virtual_now():,.1f}s after "
          f"{server.front.stats['requests']} requests", flush=True)
    return 0 if server.driver.error is None else 1


def refuse(message: str) -> int:
    print(f"kubesim serve: {message}", file=sys.stderr)
    return BAD_INPUT


def announce(server: HttpServer, loaded: LoadedScenario | None, kubeconfig: Path, notes: list[str],
             until: float | None) -> None:
    cluster = server.cluster
    name = f"scenario {loaded.id} (seed {cluster.seed})" if loaded else f"default cluster (seed {cluster.seed})"
    lines = [f"kubesim serve: {name}, {len(cluster.nodes)} nodes, on {server.url} "
             f"at {server.driver.speed:g}x real time",
             f"kubeconfig written to {kubeconfig}; to use it:",
             f"  export KUBECONFIG={kubeconfig}",
             "  kubectl get pods -w",
             *(f"note: {note}" for note in notes),
             f"serving until virtual t={until:g}s or Ctrl-C" if until is not None else "serving until Ctrl-C"]
    print("\n".join(lines), flush=True)


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (``kill``, a container stopping) ends serving cleanly, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait(server: HttpServer, until: float | None) -> None:
    """Until Ctrl-C, the simulation dies, or virtual time reaches ``until``."""
    driver = server.driver
    while driver.alive:
        left = math.inf if until is None else (until - driver.virtual_now()) / driver.speed
        if left <= 0:
            return
        time.sleep(min(left, 0.5))
