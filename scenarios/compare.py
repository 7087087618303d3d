"""Each scenario with each executor under test, side by side: what differs and where.

``compare`` runs every scenario file (every matrix variant) once per executor, with the same seed,
and keeps a small row per run: invariant violations, tasks failed, watcher deaths and watch
restarts, replayed terminal events, calls per pod, API errors by verb and status, makespan and
result latency. Runs go to worker processes (each imports Airflow once, when it runs it).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .invariants import INVARIANTS
from .loader import load
from .upstream import worker_context

COLUMNS = ("violations", "tasks_failed", "watcher_deaths", "watch_restarts", "replayed_events",
           "deletes_per_pod", "api_errors", "makespan", "result_latency")


@dataclass
class Row:
    """One scenario run with one executor, as the comparison shows it."""

    scenario: str
    path: str
    executor: str
    seed: int
    passed: bool = False
    violations: dict[str, int] = field(default_factory=dict)   # invariant -> times broken
    failed_expectations: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    api_errors: dict[str, int] = field(default_factory=dict)   # "delete 404" -> count
    deletes_per_pod: dict[str, float] = field(default_factory=dict)   # max, mean
    error: str = ""     # why it could not run at all (a crash of the run is a violation)
    wall_seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def row_of(result) -> Row:
    violations = Counter(f.check for f in result.failures if f.check in INVARIANTS or f.check in ("no process crashed", "progress"))
    errors = {f"{verb} {status}": n for verb, status, n in result.api_calls
              if not (status.isdigit() and int(status) < 400)}
    return Row(result.scenario_id, result.path, result.executor, result.seed, result.passed, dict(violations),
               [f.check for f in result.failures if f.check.startswith("expect") or f.check == "until"],
               result.metrics, errors, result.per_pod.get("delete", {}), wall_seconds=round(result.wall_seconds, 2))


def run_one(path: str, variant: str, executor: str, seed: int | None) -> Row:
    """One scenario variant with one executor (in a worker process)."""
    from .runlog import quiet_root
    from .runner import run
    from .upstream import UPSTREAM_INPUT_ERRORS
    loaded = next(s for s in load(path) if s.variant == variant)
    try:
        with quiet_root():
            return row_of(run(loaded, seed=seed, executor=executor))
    except UPSTREAM_INPUT_ERRORS as exc:
        return Row(loaded.id, path, executor, loaded.scenario.seed if seed is None else seed, error=str(exc))


OPT_IN = ("scale", "slow")   # markers of scenarios that run only when asked for, as under pytest


def scenarios_of(files: list[Path], everything: bool = False) -> tuple[list, list]:
    """(the scenarios to run, those left out for an opt-in marker) of ``files``."""
    chosen, left_out = [], []
    for path in files:
        for loaded in load(path):
            opt_in = set(loaded.scenario.markers) & set(OPT_IN)
            (left_out if opt_in and not everything else chosen).append(loaded)
    return chosen, left_out


def compare(files: list[Path], executors: list[str], seed: int | None = None, workers: int = 1,
            on_done=None, everything: bool = False) -> list[Row]:
    """Every scenario of ``files`` (but those marked scale or slow, unless ``everything``) with every
    executor, scenario by scenario, executors side by side."""
    chosen, _ = scenarios_of(files, everything)
    planned = [(str(loaded.path), loaded.variant, executor) for loaded in chosen for executor in executors]
    if workers <= 1:
        rows = []
        for path, variant, executor in planned:
            rows.append(run_one(path, variant, executor, seed))
            if on_done:
                on_done(rows[-1])
        return rows
    with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(executors)) as pool:
        futures = [pool.submit(run_one, path, variant, executor, seed) for path, variant, executor in planned]
        rows = []
        for future in futures:
            rows.append(future.result())
            if on_done:
                on_done(rows[-1])
        return rows


def cells(row: Row) -> dict[str, str]:
    """The table's cells for one row."""
    if row.error:
        return {column: "-" for column in COLUMNS} | {"violations": "not run"}
    metrics = row.metrics
    broken = ", ".join(f"{name} x{n}" for name, n in sorted(row.violations.items())) or "none"
    errors = ", ".join(f"{call} x{n}" for call, n in sorted(row.api_errors.items(), key=lambda kv: -kv[1])) or "none"
    return {
        "violations": broken,
        "tasks_failed": f"{metrics['tasks_failed']:g}",
        "watcher_deaths": f"{metrics['watcher_deaths']:g}",
        "watch_restarts": f"{metrics['watch_restarts']:g} ({metrics['watch_resumes_from_0']:g} from 0)",
        "replayed_events": f"{metrics['replayed_events']:g}",
        "deletes_per_pod": f"{row.deletes_per_pod.get('mean', 0):g} (max {row.deletes_per_pod.get('max', 0):g})",
        "api_errors": errors,
        "makespan": f"{metrics['makespan']:,.0f}s",
        "result_latency": f"{metrics['result_latency_p50']:g}s / {metrics['result_latency_p99']:g}s",
    }
