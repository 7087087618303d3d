"""Running a scenario: build the world, run it in virtual time, check what must hold."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Callable

from fakecluster import SimulationStalled

from . import metrics as measure
from .build import build_world
from .invariants import Watchdog, final_checks
from .loader import LoadedScenario


LAST_EVENTS = 15  # the trace's tail a failure shows


@dataclass
class Failure:
    check: str          # the invariant or expectation that failed
    message: str
    line: int | None = None
    time: float | None = None


@dataclass
class Result:
    scenario_id: str
    path: str
    seed: int
    virtual_seconds: float
    metrics: dict[str, float]
    failures: list[Failure] = field(default_factory=list)
    api_calls: list[tuple[str, str, int]] = field(default_factory=list)
    last_events: list[tuple] = field(default_factory=list)
    phases: list[tuple[float, dict]] = field(default_factory=list)
    queue_depth: list[tuple[float, int]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    replay: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"scenario": self.scenario_id, "path": self.path, "seed": self.seed, "passed": self.passed,
                "virtual_seconds": self.virtual_seconds, "metrics": self.metrics,
                "failures": [vars(f) for f in self.failures],
                "api_calls": [{"verb": v, "status": s, "count": n} for v, s, n in self.api_calls],
                "pods_by_phase": [{"t": t, **counts} for t, counts in thin(self.phases)],
                "queue_depth": [{"t": t, "queued": depth} for t, depth in thin(self.queue_depth)],
                "faults": [{"t": t, "action": action} for t, action in self.faults],
                "replay": self.replay}


def thin(series: list, points: int = 500) -> list:
    """At most ``points`` evenly spaced samples of a time series, always keeping the last."""
    if len(series) <= points:
        return series
    step = len(series) / points
    return [series[int(i * step)] for i in range(points)] + [series[-1]]


def run(loaded: LoadedScenario, seed: int | None = None,
        progress: Callable[[float, dict], None] | None = None) -> Result:
    scenario = loaded.scenario
    seed = scenario.seed if seed is None else seed
    # Pods are measured as they change: the run keeps only its trace's tail and no call log.
    world = build_world(scenario, seed, trace=LAST_EVENTS)
    world.cluster.gateway.record_log = False
    timeline = measure.PodTimeline()
    world.cluster.server.pods.listeners.append(timeline.on_change)
    watchdog = Watchdog(now=lambda: world.cluster.now)
    world.cluster.server.pods.listeners.append(watchdog.on_pod_change)
    world.on_executor = lambda executor: executor.state_listeners.append(watchdog.on_state)
    fault_marks = [(f.at, f.action) for f in scenario.faults if f.at is not None]
    failures: list[Failure] = []
    limit = scenario.until.max_virtual_seconds
    if progress is not None:
        tick = min(max(1.0, limit / 200), 30.0)  # virtual seconds between progress reports
        report = lambda: (progress(world.cluster.now, world.states()), world.cluster.at(world.cluster.now + tick, report))
        world.cluster.at(0, report)
    try:
        world.run_until_done(timeout=limit)
    except TimeoutError as exc:
        failures.append(Failure("until", str(exc), loaded.line_of("until", "max_virtual_seconds"),
                                world.cluster.now))
    except SimulationStalled as exc:
        failures.append(Failure("progress", f"the simulation stalled: {exc}", None, world.cluster.now))
    measured = measure.measure(world, timeline)
    result = Result(loaded.id, str(loaded.path), seed, world.cluster.now, measured.metrics,
                    api_calls=measured.api_calls, last_events=list(world.cluster.trace),
                    phases=measured.phases, faults=fault_marks, queue_depth=measured.queue_depth,
                    replay=replay_command(loaded, seed))
    failures += [Failure(v.invariant, v.message, None, v.time) for v in final_checks(world, watchdog)]
    failures += check_expectations(loaded, result.metrics, world)
    result.failures = failures
    return result


def check_expectations(loaded: LoadedScenario, metrics: dict, world) -> list[Failure]:
    expect, failures = loaded.scenario.expect, []
    for name, bound in expect.metrics.items():
        actual = metrics[name]
        if bound.min is not None and actual < bound.min:
            failures.append(Failure(f"expect.metrics.{name}", f"expected {name} >= {bound.min:g}, got {actual:g}",
                                    loaded.line_of("expect", "metrics", name)))
        if bound.max is not None and actual > bound.max:
            failures.append(Failure(f"expect.metrics.{name}", f"expected {name} <= {bound.max:g}, got {actual:g}",
                                    loaded.line_of("expect", "metrics", name)))
    if expect.all_tasks == "success" and metrics["tasks_failed"]:
        failed = [f"{ti.dag_id}.{ti.task_id}" for ti in world.store.tis.values() if ti.state == "failed"][:5]
        failures.append(Failure("expect.all_tasks", f"expected every task to succeed; "
                                f"{metrics['tasks_failed']:g} failed, e.g. {failed}",
                                loaded.line_of("expect", "all_tasks")))
    return failures


def replay_command(loaded: LoadedScenario, seed: int) -> str:
    command = ["kubesim", "run", str(loaded.path), "--seed", str(seed)]
    if loaded.variant:
        command += ["--variant", loaded.variant]
    return shlex.join(command)


def describe_failure(result: Result) -> str:
    """What a person needs to see when a scenario fails."""
    lines = [f"scenario {result.scenario_id} ({result.path}) failed, seed {result.seed}, "
             f"virtual time {result.virtual_seconds:.1f}s"]
    for failure in result.failures:
        where = f"{result.path}:{failure.line}: " if failure.line else ""
        when = f" (at t={failure.time:.1f}s)" if failure.time is not None else ""
        lines.append(f"  {where}{failure.check}: {failure.message}{when}")
    lines.append("  last events before the end (t, rv, type, kind, namespace, name, phase):")
    lines += [f"    {event}" for event in result.last_events]
    lines.append(f"  replay: {result.replay}")
    return "\n".join(lines)
