"""Running a scenario: build the world, run it in virtual time, check what must hold."""

from __future__ import annotations

import shlex
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from fakecluster import Livelock, SimulationStalled

from . import metrics as measure
from .build import build_world
from .invariants import INVARIANTS, Watchdog, final_checks
from .loader import LoadedScenario
from .runlog import LogLine, RunLog
from .samples import CallRecorder, api_over_time
from .timeline import FaultEvent, FaultLog, add_reactions


LAST_EVENTS = 15  # the trace's tail a failure shows
LOG_CALLS_UP_TO = 20_000  # tasks: above, no log of every call (its memory), only what is counted


@dataclass
class Failure:
    check: str          # the invariant or expectation that failed
    message: str
    line: int | None = None
    time: float | None = None
    why: str | None = None  # the behaviour the file says this check guards


@dataclass
class Check:
    """One row of the report: an expectation of the file or an invariant of every run."""

    name: str
    bound: str          # what must hold: "<= 600", "success", "holds"
    actual: str         # what the run gave: "219.0", "0 failed", "not judged (cut off)"
    passed: bool | None  # None: not judged
    why: str = ""       # the file's reason, or what the invariant means
    line: int | None = None
    what: str = ""      # what is bounded, for the failure message ("delete calls answered 404")

    def to_json(self) -> dict:
        return vars(self).copy()


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
    faults: list[FaultEvent] = field(default_factory=list)
    replay: str = ""
    description: str = ""
    expectations: list[Check] = field(default_factory=list)
    invariants: list[Check] = field(default_factory=list)
    wall_seconds: float = 0.0
    log_counts: dict[str, int] = field(default_factory=dict)
    log_lines: list[LogLine] = field(default_factory=list)
    samples: dict[str, Sequence[float]] = field(default_factory=dict)   # pod_start, result_latency...
    api_over_time: dict = field(default_factory=dict)
    crash: str = ""     # the traceback of a crashed process that ended the run
    executor: str = "kubesim"   # the executor under test: kubesim's, or upstream Airflow's
    per_pod: dict[str, dict] = field(default_factory=dict)   # verb -> {"max", "mean"} calls per pod

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"scenario": self.scenario_id, "path": self.path, "seed": self.seed, "passed": self.passed,
                "executor": self.executor,
                "description": self.description,
                "virtual_seconds": self.virtual_seconds, "wall_seconds": round(self.wall_seconds, 3),
                "metrics": self.metrics,
                "expectations": [c.to_json() for c in self.expectations],
                "invariants": [c.to_json() for c in self.invariants],
                "failures": [vars(f) for f in self.failures],
                "api_calls": [{"verb": v, "status": s, "count": n} for v, s, n in self.api_calls],
                "api_over_time": self.api_over_time,
                "pods_by_phase": [{"t": t, **counts} for t, counts in thin(self.phases)],
                "queue_depth": [{"t": t, "queued": depth} for t, depth in thin(self.queue_depth)],
                "faults": [event.to_json() for event in self.faults],
                "logs": dict(self.log_counts), "crash": self.crash, "calls_per_pod": self.per_pod,
                "replay": self.replay}


def under_test(result: Result) -> str:
    """", executor airflow" when the run was not kubesim's own executor ("" when it was)."""
    return "" if result.executor == "kubesim" else f", executor {result.executor}"


def thin(series: list, points: int = 500) -> list:
    """At most ``points`` evenly spaced samples of a time series, always keeping the last."""
    if len(series) <= points:
        return series
    step = len(series) / points
    return [series[int(i * step)] for i in range(points)] + [series[-1]]


def run(loaded: LoadedScenario, seed: int | None = None,
        progress: Callable[[float, dict], None] | None = None,
        echo: Callable[[str], None] | None = None, executor: str | None = None) -> Result:
    """Run one scenario; ``progress`` is called now and then with (virtual time, task states),
    ``echo`` with every log line as it is written (``kubesim run -v``); ``executor`` overrides the
    file's ``under_test`` (kubesim or airflow)."""
    scenario = loaded.scenario
    seed = scenario.seed if seed is None else seed
    executor = executor or scenario.under_test
    started = time.perf_counter()
    fault_log = FaultLog()
    # Pods are measured as they change: the run keeps only its trace's tail.
    world = build_world(scenario, seed, fault_log, executor=executor, trace=LAST_EVENTS)
    timeline = measure.PodTimeline()
    world.cluster.server.pods.listeners.append(timeline.on_change)
    world.report_listeners.append(lambda when, _key, pod: timeline.on_report(when, pod))
    calls = CallRecorder(bound.verb for bound in scenario.expect.per_pod)
    world.cluster.gateway.listeners.append(calls.on_call)
    # Every call is logged for the violations' histories, but for a large run (memory)
    world.cluster.gateway.record_log = scenario.workload.dags * scenario.workload.tasks_per_dag <= LOG_CALLS_UP_TO
    now = lambda: world.cluster.now
    watchdog = Watchdog().attach(world)
    limit = scenario.until.max_virtual_seconds
    if progress is not None:
        tick = min(max(1.0, limit / 200), 30.0)  # virtual seconds between progress reports
        report = lambda: (progress(world.cluster.now, world.states()), world.cluster.at(world.cluster.now + tick, report))
        world.cluster.at(0, report)
    with RunLog(now, echo) as log:
        ended, crash = end_of_run(loaded, world, limit)
    measured = measure.measure(world, timeline)
    result = Result(loaded.id, str(loaded.path), seed, world.cluster.now, measured.metrics,
                    api_calls=measured.api_calls, last_events=list(world.cluster.trace),
                    phases=measured.phases, faults=fault_log.ordered(),
                    queue_depth=measured.queue_depth, replay=replay_command(loaded, seed, executor),
                    executor=executor,
                    description=" ".join(scenario.description.split()), log_counts=dict(log.counts),
                    log_lines=log.lines, crash=crash,
                    samples={"pod_start": timeline.starts,
                             "result_latency": measure.result_latencies(world, timeline), "queue_wait": measure.queue_waits(world)},
                    api_over_time=api_over_time(calls, world.cluster.now))
    result.per_pod = calls_per_pod(world)   # from the call log (kept for runs up to LOG_CALLS_UP_TO)
    add_reactions(result.faults, log.lines, calls.failed, world.cluster.now)
    cut_off = any(f.check == "until" for f in ended)
    violations = final_checks(world, watchdog)
    result.invariants = invariant_checks(violations, cut_off)
    result.expectations = [until_check(loaded, world.cluster.now, cut_off)] + \
        expectation_checks(loaded, result.metrics, world, calls)
    result.failures = ended + invariant_failures(violations, cut_off)
    result.failures += [Failure(c.name, failure_message(c), c.line, why=c.why)
                        for c in result.expectations[1:] if c.passed is False]
    result.wall_seconds = time.perf_counter() - started
    return result


def end_of_run(loaded: LoadedScenario, world, limit: float) -> tuple[list[Failure], str]:
    """Run to the end; the ways a run can end early, as failures (and a crash's traceback)."""
    try:
        world.run_until_done(timeout=limit)
    except TimeoutError as exc:
        return [Failure("until", str(exc), loaded.line_of("until", "max_virtual_seconds"), world.cluster.now)], ""
    except SimulationStalled as exc:
        return [Failure("progress", f"the simulation stalled: {exc}", None, world.cluster.now)], ""
    except Livelock as exc:
        return [Failure("progress", f"virtual time stopped passing: {exc}", None, world.cluster.now)], ""
    except Exception as exc:  # a process of the run crashed: end the run, keep its traceback
        crash = "".join(traceback.format_exception(exc)).rstrip()
        return [Failure("no process crashed", f"{type(exc).__name__}: {exc}", None, world.cluster.now)], crash
    return [], ""


def invariant_checks(violations: list, cut_off: bool) -> list[Check]:
    """Every invariant with its verdict; end-of-run ones are not judged on a run cut off."""
    found: dict[str, list] = {}
    for violation in violations:
        found.setdefault(violation.invariant, []).append(violation)
    checks = []
    for name, (meaning, at_end) in {**INVARIANTS, **{n: ("", False) for n in found if n not in INVARIANTS}}.items():
        if at_end and cut_off:
            checks.append(Check(name, "holds", "not judged: the run was cut off", None, meaning))
        elif name in found:
            first = found[name][0]
            more = f" (and {len(found[name]) - 1} more)" if len(found[name]) > 1 else ""
            checks.append(Check(name, "holds", first.message + more, False, meaning))
        else:
            checks.append(Check(name, "holds", "held", True, meaning))
    return checks


def invariant_failures(violations: list, cut_off: bool) -> list[Failure]:
    return [Failure(v.invariant, v.describe(), None, v.time) for v in violations
            if not (cut_off and INVARIANTS.get(v.invariant, ("", False))[1])]


def until_check(loaded: LoadedScenario, now: float, cut_off: bool) -> Check:
    limit = loaded.scenario.until.max_virtual_seconds
    actual = f"cut off at {now:,.1f}s" if cut_off else f"ended at {now:,.1f}s"
    return Check("until.max_virtual_seconds", f"<= {limit:g}s", actual, not cut_off,
                 "the run ends in time", loaded.line_of("until", "max_virtual_seconds"))


def expectation_checks(loaded: LoadedScenario, metrics: dict, world, recorder: CallRecorder) -> list[Check]:
    """Every expectation of the file with its bound, the actual value and the verdict."""
    expect, checks = loaded.scenario.expect, []
    for name, bound in expect.metrics.items():
        actual = metrics[name]
        low_ok = bound.min is None or actual >= bound.min
        high_ok = bound.max is None or actual <= bound.max
        checks.append(Check(f"expect.metrics.{name}", describe_bound(bound.min, bound.max), f"{actual:g}",
                            low_ok and high_ok, getattr(bound, "why", "") or "",
                            loaded.line_of("expect", "metrics", name)))
    checks += call_checks(loaded, world, recorder)
    if expect.all_tasks:
        failed = metrics["tasks_failed"]
        ok = not failed if expect.all_tasks == "success" else True  # terminal: the invariant judges it
        actual = f"{metrics['tasks_succeeded']:g} succeeded, {failed:g} failed"
        if failed:
            actual += f", e.g. {failed_sample(world)}"
        checks.append(Check("expect.all_tasks", expect.all_tasks, actual, ok,
                            "", loaded.line_of("expect", "all_tasks")))
    return checks


def call_checks(loaded: LoadedScenario, world, recorder: CallRecorder) -> list[Check]:
    """The file's bounds on API calls by verb and status, and on calls per pod."""
    expect, checks = loaded.scenario.expect, []
    calls = world.cluster.gateway.calls
    for i, bound in enumerate(expect.calls):
        actual = sum(n for (verb, status), n in calls.items()
                     if bound.verb in ("*", verb) and bound.status in ("*", status))
        checks.append(bound_check(f"expect.calls[{i}]", f"{bound.verb} calls answered {bound.status}", actual,
                                  bound.min, bound.max, bound.why, loaded.line_of("expect", "calls", i)))
    for i, bound in enumerate(expect.per_pod):
        per_pod = recorder.per_pod.get(bound.verb, Counter())
        pod, actual = max(per_pod.items(), key=lambda item: item[1], default=("-", 0))
        checks.append(bound_check(f"expect.per_pod[{i}]", f"{bound.verb} calls per pod (most: {pod})", actual,
                                  None, bound.max, bound.why, loaded.line_of("expect", "per_pod", i)))
    return checks


def calls_per_pod(world, verbs=("delete", "patch", "get")) -> dict[str, dict]:
    """For each verb, over the pods that got any: the most calls one pod got, and the mean."""
    counts = {verb: Counter() for verb in verbs}
    for call in world.cluster.gateway.log:
        if call.resource == "pods" and call.name and call.verb in counts:
            counts[call.verb][call.name] += 1
    return {verb: {"max": max(c.values(), default=0), "mean": round(sum(c.values()) / len(c), 3) if c else 0.0}
            for verb, c in counts.items()}


def bound_check(name: str, what: str, actual: float, low, high, why, line) -> Check:
    ok = (low is None or actual >= low) and (high is None or actual <= high)
    return Check(name, describe_bound(low, high), f"{actual:g}", ok, why or "", line, what)


def failed_sample(world) -> list[str]:
    return [f"{ti.dag_id}.{ti.task_id}" for ti in world.store.tis.values() if ti.state == "failed"][:5]


def describe_bound(low, high) -> str:
    if low is not None and high is not None:
        return f"= {low:g}" if low == high else f"{low:g} to {high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def failure_message(check: Check) -> str:
    """The failed check in a sentence, with the reason the file gave for it."""
    why = f" ({check.why})" if check.why else ""
    if check.name == "expect.all_tasks":
        return f"expected every task to succeed; {check.actual}{why}"
    name = check.what or check.name.rsplit(".", 1)[-1]
    bound = check.bound
    if bound.startswith("= "):
        bound = f">= {bound[2:]}" if float(check.actual) < float(bound[2:]) else f"<= {bound[2:]}"
    elif " to " in bound:
        low, high = bound.split(" to ")
        bound = f">= {low}" if float(check.actual) < float(low) else f"<= {high}"
    return f"expected {name} {bound}, got {check.actual}{why}"


def replay_command(loaded: LoadedScenario, seed: int, executor: str = "kubesim") -> str:
    command = ["kubesim", "run", str(loaded.path), "--seed", str(seed)]
    if loaded.variant:
        command += ["--variant", loaded.variant]
    if executor != loaded.scenario.under_test:
        command += ["--executor", executor]
    return shlex.join(command)


def describe_failure(result: Result) -> str:
    """What a person needs to see when a scenario fails."""
    lines = [f"scenario {result.scenario_id} ({result.path}) failed, seed {result.seed}{under_test(result)}, "
             f"virtual time {result.virtual_seconds:.1f}s"]
    for failure in result.failures:
        where = f"{result.path}:{failure.line}: " if failure.line else ""
        when = f" (at t={failure.time:.1f}s)" if failure.time is not None else ""
        lines.append(f"  {where}{failure.check}: {failure.message}{when}")
    if result.crash:
        lines.append("  the crashed process's traceback:")
        lines += [f"    {line}" for line in result.crash.splitlines()]
    lines.append("  last events before the end (t, rv, type, kind, namespace, name, phase):")
    lines += [f"    {event}" for event in result.last_events]
    lines.append(f"  replay: {result.replay}")
    return "\n".join(lines)
