"""Metrics of a finished run: throughput, latencies, API calls, watch health, retries.

Each metric and series costs in proportion to the run's events: pods are followed one change at
a time (``PodTimeline``, as the world runs or from a trace), task histories read in one pass;
``tests/test_run_costs.py`` counts the work.
"""

from __future__ import annotations

import gc
from array import array
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from executor import State


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def queue_waits(world) -> list[float]:
    """Per try: from QUEUED to RUNNING, as the task store saw it."""
    waits = []
    for ti in world.store.tis.values():
        queued: dict[int, float] = {}
        for when, state, try_number in ti.history:
            if state == State.QUEUED:
                queued.setdefault(try_number, when)
            elif state == State.RUNNING and try_number in queued:
                waits.append(when - queued.pop(try_number))
    return waits


class PhaseSeries(Sequence):
    """(time, {phase: count}) after every pod change, kept as columns (the times, and one count
    per phase seen) rather than a dict per change: 100,000 tasks make 500,000 changes. Reads as
    the list of pairs it stands for; each pair is made when it is read."""

    def __init__(self):
        self.times = array("d")
        self.columns: dict[str, array] = {}   # phase -> its count after each change

    def append(self, when: float, counts: dict[str, int]) -> None:
        for phase in counts.keys() - self.columns.keys():
            self.columns[phase] = array("i", bytes(len(self.times) * array("i").itemsize))   # 4 bytes a count
        self.times.append(when)
        for phase, column in self.columns.items():
            column.append(counts.get(phase, 0))

    def __len__(self) -> int:
        return len(self.times)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.times[index], {phase: n for phase, column in self.columns.items() if (n := column[index])}


class PodTimeline:
    """What the runner measures of pods, one change at a time: pods by phase after every change
    (``phases``) and each pod's start latency, from its creation to its first Running
    (``starts``). Each change costs the same however many pods are alive: a change moves one pod
    out of its phase and into another. Fed by a store listener while the world runs (so the run
    needs no trace), or from a trace afterwards."""

    def __init__(self):
        self.phases = PhaseSeries()
        self.starts = array("d")              # floats unboxed: 8 bytes each, not 32
        self._current: dict[tuple, str] = {}   # live pod -> its phase
        self._counts: dict[str, int] = {}      # only phases some pod is in
        self._created: dict[tuple, float] = {}  # pods not Running yet -> when they were created
        self.latencies = array("d")             # a pod's end to its executor's report, per reported try
        self._ended: dict[str, float] = {}      # ended pods not reported yet -> when they ended
        self._reported: dict[str, float] = {}   # reported before their end showed here -> when
        self._done: set[tuple] = set()          # live pods whose end has been counted

    def on_change(self, change) -> None:
        """A pod store listener."""
        obj = change.obj
        meta = obj["metadata"]
        self.add(change.at, change.type, meta.get("namespace", ""), meta["name"],
                 obj.get("status", {}).get("phase", ""))

    def add(self, when: float, kind: str, namespace: str, name: str, phase: str) -> None:
        key, counts = (namespace, name), self._counts
        before = self._current.pop(key, None)
        if before is not None:
            counts[before] -= 1
            if not counts[before]:
                del counts[before]
        if kind != "DELETED":
            self._current[key] = phase
            counts[phase] = counts.get(phase, 0) + 1
        self.phases.append(when, counts)
        if phase in ("Succeeded", "Failed") and key not in self._done:
            self._done.add(key)
            if name in self._reported:
                self.latencies.append(max(0.0, self._reported.pop(name) - when))
            else:
                self._ended[name] = when
        if kind == "DELETED":
            # an ended pod stays to be matched: an executor may delete it before it reports the
            # try (upstream Airflow's does); matching forgets it, as it forgets a report
            self._done.discard(key)
        if kind == "ADDED":
            self._created[key] = when
        elif phase == "Running" and key in self._created:
            self.starts.append(when - self._created.pop(key))

    def on_report(self, when: float, pod: str | None) -> None:
        """An executor reported the end of the try whose pod this is (a World report listener)."""
        if pod is None:
            return
        if pod in self._ended:
            self.latencies.append(when - self._ended.pop(pod))
        else:
            self._reported[pod] = when

    @classmethod
    def from_trace(cls, trace) -> "PodTimeline":
        timeline = cls()
        for entry in trace:
            if len(entry) == 7 and entry[3] == "Pod":
                when, _rv, kind, _kind, namespace, name, phase = entry
                timeline.add(when, kind, namespace, name, phase)
        return timeline


def result_latencies(world, timeline: PodTimeline | None = None) -> Sequence[float]:
    """Per reported try: from its pod's end (Succeeded or Failed) to the executor's report, as the
    timeline followed them (a timeline rebuilt from a trace saw no report: none)."""
    return timeline.latencies if timeline is not None else []


def phases_over_time(trace) -> PhaseSeries:
    """Pods by phase after every pod change of a trace: the pods-by-phase plot's data."""
    return PodTimeline.from_trace(trace).phases


def pod_starts(trace) -> Sequence[float]:
    """Per pod of a trace: from creation (ADDED) to its first Running."""
    return PodTimeline.from_trace(trace).starts


def queue_depth(world) -> list[tuple[float, int]]:
    """(time, tries QUEUED) from t=0 to the end of the run, one point per instant it changed.

    At one instant a try may be queued and leave the queue again: entries count before exits
    there, so the depth never dips below zero, and only the instant's final depth is kept."""
    steps = []
    for ti in world.store.tis.values():
        previous = None
        for when, state, _try in ti.history:
            if state == State.QUEUED and previous != State.QUEUED:
                steps.append((when, 1))
            elif previous == State.QUEUED and state != State.QUEUED:
                steps.append((when, -1))
            previous = state
    depth, series = 0, [(0.0, 0)]
    for when, change in sorted(steps, key=lambda step: (step[0], -step[1])):
        depth += change
        if series[-1][0] == when:
            series[-1] = (when, depth)
        else:
            series.append((when, depth))
    if world.cluster.now > series[-1][0]:
        series.append((world.cluster.now, depth))  # the series spans the whole run
    return series


@dataclass
class Measured:
    """Everything the runner reports about a finished world."""

    makespan: float
    metrics: dict[str, float]
    api_calls: list[tuple[str, str, int]]
    phases: PhaseSeries
    queue_depth: list[tuple[float, int]]


def measure(world, timeline: PodTimeline | None = None) -> Measured:
    """Everything about a finished world; ``timeline`` is what followed its pods as it ran
    (without one, the world's trace is read instead)."""
    with collector_paused():
        timeline = timeline or PodTimeline.from_trace(world.cluster.trace)
        makespan = last_terminal_time(world)
        return Measured(makespan, compute(world, makespan, timeline), api_table(world),
                        timeline.phases, queue_depth(world))


@contextmanager
def collector_paused():
    """Measuring makes only short-lived lists, no cycles; with the collector on, the collections
    they trigger walk the whole finished world (a tenth of a second at 10,000 tasks, ten times
    as many objects at 100,000)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def last_terminal_time(world) -> float:
    """When the last task try ended (the run's makespan); the world's clock if none did."""
    times = [when for ti in world.store.tis.values() for when, state, _ in ti.history
             if state in ("success", "failed")]
    return max(times, default=world.cluster.now)


def compute(world, makespan: float, timeline: PodTimeline | None = None) -> dict[str, float]:
    cluster, store = world.cluster, world.store
    calls = cluster.gateway.calls
    states = Counter(ti.state for ti in store.tis.values())
    timeline = timeline or PodTimeline.from_trace(cluster.trace)
    waits, starts, latencies = queue_waits(world), timeline.starts, result_latencies(world, timeline)
    executors = [job.executor for job in world.jobs]
    stats = Counter()
    for executor in executors:
        stats.update(executor.stats)
        for watcher in getattr(executor, "watchers_started", []):
            stats.update({f"watch_{k}": v for k, v in watcher.stats.items()})
    watch_calls = sum(n for (verb, _status), n in calls.items() if verb == "watch")
    namespaces = max(1, len(world.config.multi_namespace_mode_namespace_list) or 1)
    done = states[State.SUCCESS] + states[State.FAILED]
    return {
        "makespan": round(makespan, 3),
        "throughput": round(done / makespan, 4) if makespan else 0.0,
        "tasks_succeeded": states[State.SUCCESS],
        "tasks_failed": states[State.FAILED],
        **{f"queue_wait_p{q}": round(percentile(waits, q), 3) for q in (50, 95, 99)},
        **{f"pod_start_p{q}": round(percentile(starts, q), 3) for q in (50, 95, 99)},
        **{f"result_latency_p{q}": round(percentile(latencies, q), 3) for q in (50, 99)},
        "watch_restarts": max(0, watch_calls - namespaces * len(world.jobs)),
        "watch_410s": stats["watch_expired"],
        "watch_resumes_from_0": cluster.server.watch_starts["0"],
        "watcher_deaths": stats["watcher_deaths"],
        "replayed_events": stats["duplicate_terminal_events"],
        "retries": sum(max(0, ti.try_number - 1) for ti in store.tis.values()),
        "pods_created": calls.get(("create", 201), 0),
        "api_calls": sum(calls.values()),
        "api_errors": sum(n for (_verb, status), n in calls.items() if not (isinstance(status, int) and status < 400)),
        "scheduler_restarts": max(0, len(world.jobs) - 1),
        "adopted_pods": stats["adopted"],
        "shutdown_seconds": round(max((job.shutdown_seconds for job in world.jobs), default=0.0), 3),
    }


def api_table(world) -> list[tuple[str, str, int]]:
    return sorted(((verb, str(status), n) for (verb, status), n in world.cluster.gateway.calls.items()))
