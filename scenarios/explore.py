"""``kubesim explore``: randomized fault schedules that hunt for invariant violations.

The file gives the world (cluster, executor options, workload); each run draws a fault schedule
from the grammar in ``explore_grammar`` (swarm style), runs it in virtual time and checks the
always-on invariants (and, if asked, the file's expectations). Hypothesis draws the schedules
and shrinks every distinct failure it finds to a minimal one, which is written as a scenario
file that ``kubesim run`` replays exactly.

The runs are cut into shards of ``SHARD_RUNS`` draws, each a hypothesis search of its own seeded
from the exploration's seed and the shard's number, so the same file and ``--seed`` draw the same
schedules and find the same failures however many workers share the shards (processes on this
machine, or a Dask cluster). A failure is told apart by its invariant: each is kept once, the
smallest schedule found for it.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .explore_grammar import KINDS, schedule
from .invariants import INVARIANTS
from .loader import ScenarioError, load_variant, parse_yaml

SHARD_RUNS = 10                 # draws per hypothesis search
RUN_FAILURES = ("until", "progress", "no process crashed")   # a run that cannot end is a finding too


@dataclass
class Finding:
    """One distinct failure, shrunk: the invariant, its message, and the scenario that replays it."""

    invariant: str
    message: str
    scenario: dict[str, Any]
    shard: int
    faults: int

    def size(self) -> tuple:
        world = self.scenario.get("workload", {}).get("tasks_per_dag", 0), self.scenario.get("cluster", {}).get("nodes", 0)
        return (self.faults, *world)


@dataclass
class ShardResult:
    shard: int
    runs: int
    seconds: float
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What every shard needs: the file (its text: remote workers cannot read a path here)."""

    path: str
    text: str
    seed: int
    kinds: tuple[str, ...]
    horizon: float
    max_tasks: int
    max_nodes: int
    max_faults: int
    expectations: bool
    executor: str | None = None   # the executor under test (None: the file's under_test)


def plan(path: Path, text: str, seed: int, kinds: list[str] | None, expectations: bool,
         executor: str | None = None) -> Plan:
    """Read the file's world and its ``explore`` section; ScenarioError on a bad file."""
    raw, lines = parse_yaml(path, text)
    loaded = load_variant(path, raw, lines, {}, None)
    spec = loaded.scenario.explore
    chosen = tuple(kinds or spec.kinds or KINDS)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise ScenarioError(path, [(None, "explore.kinds", f"unknown fault kind(s) {', '.join(unknown)}; "
                                    f"known: {', '.join(KINDS)}")])
    work, cluster = loaded.scenario.workload, loaded.scenario.cluster
    if executor is None and loaded.scenario.under_test != "kubesim":
        executor = loaded.scenario.under_test
    return Plan(str(path), text, seed, chosen, spec.horizon, work.dags * work.tasks_per_dag, cluster.nodes,
                spec.max_faults, expectations, executor)


def scenario_of(plan: Plan, overlay: dict[str, Any]) -> dict[str, Any]:
    """The file's own keys with a drawn schedule laid over them: a complete scenario."""
    raw, _ = parse_yaml(Path(plan.path), plan.text)
    raw = {k: v for k, v in raw.items() if k not in ("matrix", "explore")}
    merged = copy.deepcopy(raw)
    for section in ("workload", "cluster"):
        merged[section] = {**(merged.get(section) or {}), **overlay.get(section, {})}
    if "api_latency" in overlay.get("cluster", {}):
        merged["cluster"]["api_latency"] = {**(raw.get("cluster") or {}).get("api_latency", {}),
                                            **overlay["cluster"]["api_latency"]}
    merged["faults"] = overlay["faults"]
    merged["seed"] = overlay["seed"]
    if plan.executor:   # a finding replays against the executor it was found on
        merged["under_test"] = plan.executor
    if not plan.expectations:
        merged["expect"] = {"all_tasks": "terminal"}
    merged["name"] = f"{raw.get('name') or Path(plan.path).stem}-explored"
    return merged


class Violated(Exception):
    """Raised inside a hypothesis search for a run that broke an invariant (one type each)."""

    scenario: dict
    message: str


_VIOLATION_TYPES: dict[str, type] = {}


def where(check: str, crash: str) -> str:
    """What tells failures apart: the invariant, and for a crashed process the line that raised."""
    if check != "no process crashed" or not crash:
        return check
    frames = [line.strip() for line in crash.splitlines() if line.strip().startswith('File "')]
    return f"{check} at {frames[-1].split(', in ')[0]}" if frames else check


def violation_type(invariant: str) -> type:
    """One exception type per invariant, so hypothesis keeps and shrinks each failure apart."""
    if invariant not in _VIOLATION_TYPES:
        name = "".join(part.title() for part in invariant.replace("-", " ").split() if part.isalnum()) or "Failure"
        _VIOLATION_TYPES[invariant] = type(f"Violated{name}", (Violated,), {"invariant": invariant})
    return _VIOLATION_TYPES[invariant]


def run_shard(plan: Plan, shard: int) -> ShardResult:
    """One hypothesis search: ``SHARD_RUNS`` draws, each distinct failure shrunk (in a worker)."""
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from .runner import run
    logging.disable(logging.CRITICAL)
    started, runs = time.perf_counter(), [0]
    strategy = schedule(plan.kinds, plan.horizon, plan.max_tasks, plan.max_nodes, plan.max_faults)

    @settings(max_examples=SHARD_RUNS, database=None, deadline=None, report_multiple_bugs=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink], print_blob=False)
    @seed(plan.seed * 1_000_003 + shard)
    @given(strategy)
    def probe(overlay):
        runs[0] += 1
        scenario = scenario_of(plan, overlay)
        raw_path = Path(plan.path)
        loaded = load_variant(raw_path, scenario, {}, {}, None)
        result = run(loaded)
        broken = [f for f in result.failures
                  if f.check in INVARIANTS or f.check in RUN_FAILURES or (plan.expectations and f.check.startswith("expect"))]
        if broken:
            error = violation_type(where(broken[0].check, result.crash))(broken[0].message)
            error.scenario, error.message = scenario, broken[0].message.splitlines()[0]
            raise error

    findings = []
    try:
        probe()
    except BaseException as exc:   # one Violated, or a group of them (one per distinct failure)
        for error in leaves(exc):
            if not isinstance(error, Violated):
                raise
            findings.append(Finding(error.invariant, error.message, error.scenario, shard,
                                    len(error.scenario["faults"])))
    finally:
        logging.disable(logging.NOTSET)   # quiet runs while hunting; the process's logging as it was
    return ShardResult(shard, runs[0], time.perf_counter() - started, findings)


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def merge(findings: list[Finding]) -> list[Finding]:
    """One finding per invariant: the smallest schedule (fewest faults, then tasks, then nodes)."""
    best: dict[str, Finding] = {}
    for finding in sorted(findings, key=lambda f: (f.size(), f.shard)):
        best.setdefault(finding.invariant, finding)
    return sorted(best.values(), key=lambda f: f.invariant)


def write_finding(finding: Finding, out: Path, plan: Plan) -> Path:
    """The shrunk schedule as a scenario file, with a comment saying what it found and how."""
    out.mkdir(parents=True, exist_ok=True)
    slug = "-".join(part for part in finding.invariant.replace("/", " ").replace('"', " ").split()
                    if part.replace("_", "").replace(".", "").replace("-", "").isalnum())[:80]
    path = out / f"{Path(plan.path).stem}-{slug}.yaml"
    header = (f"# Found by kubesim explore {plan.path} --seed {plan.seed} (shard {finding.shard}), shrunk by\n"
              f"# hypothesis to {finding.faults} fault(s): {finding.invariant}: {finding.message}\n"
              f"# Replay: kubesim run {path}\n")
    scenario = dict(finding.scenario)
    scenario["description"] = f"kubesim explore found: {finding.invariant}: {finding.message}"
    path.write_text(header + yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
