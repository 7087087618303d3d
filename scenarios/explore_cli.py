"""``kubesim explore``'s command line: shards in parallel, progress, a summary, files to replay."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .explore import SHARD_RUNS, Finding, Plan, ShardResult, merge, plan, run_shard, write_finding
from .explore_grammar import KINDS
from .loader import ScenarioError, read
from .upstream import executor_problem, worker_context

BAD_INPUT = 2


def add_command(commands) -> None:
    explore = commands.add_parser("explore", help="run randomized fault schedules against a world, hunting for "
                                  "invariant violations; each one found is shrunk to a minimal scenario file")
    explore.add_argument("file", type=Path, nargs="?", help="the world: cluster, executor options, workload")
    budget = explore.add_mutually_exclusive_group()
    budget.add_argument("--runs", type=int, help=f"schedules to draw (default 200; in shards of {SHARD_RUNS})")
    budget.add_argument("--time", dest="duration", help="draw until this much wall time has passed: 90s, 10m, 1h")
    explore.add_argument("--seed", type=int, default=0, help="the exploration's seed (same seed, same findings)")
    explore.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    explore.add_argument("--dask", metavar="ADDRESS", help="run the shards on this Dask scheduler")
    explore.add_argument("--out", type=Path, default=Path("explored"), help="where the shrunk scenarios go")
    explore.add_argument("--kinds", help="comma-separated fault kinds to draw from (default: the file's, or all)")
    explore.add_argument("--expectations", action="store_true", help="the file's expectations count as failures too")
    explore.add_argument("--json", type=Path, dest="json_out", help="write the findings as JSON here")
    explore.add_argument("--executor", choices=("kubesim", "airflow"),
                         help="the executor under test (default: the file's under_test, else kubesim): "
                              "airflow is upstream's unmodified KubernetesExecutor (needs the airflow extra)")
    explore.add_argument("--list-kinds", action="store_true", help="list the fault kinds and exit")
    explore.set_defaults(handler=cmd_explore)


def cmd_explore(args, console: Console) -> int:
    if args.list_kinds:
        for kind, meaning in KINDS.items():
            console.print(f"[bold]{kind}[/]: {escape(meaning)}", highlight=False)
        return 0
    problem = argument_problem(args)
    if problem:
        console.print(f"[red]{escape(problem)}[/]", soft_wrap=True)
        return BAD_INPUT
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    try:
        the_plan = plan(args.file, read(args.file), args.seed, kinds, args.expectations, args.executor)
    except ScenarioError as exc:
        console.print(escape(str(exc)), soft_wrap=True)
        return BAD_INPUT
    problem = executor_problem([the_plan.executor or "kubesim"])
    if problem:
        print(f"kubesim explore: {problem}", file=sys.stderr)
        return BAD_INPUT
    deadline = time.monotonic() + parse_duration(args.duration) if args.duration else None
    shards = math.ceil((args.runs or 200) / SHARD_RUNS) if deadline is None else None
    console.print(f"exploring {escape(str(args.file))}{under_test(the_plan.executor)}: {describe_budget(args, shards)}, seed {args.seed}, "
                  f"fault kinds: {', '.join(the_plan.kinds)}", highlight=False, soft_wrap=True)
    started = time.perf_counter()
    results = run_shards(the_plan, shards, deadline, args.workers, args.dask, console)
    findings = merge([f for r in results for f in r.findings])
    runs = sum(r.runs for r in results)
    written = [write_finding(f, args.out, the_plan) for f in findings]
    print_summary(console, findings, written, runs, time.perf_counter() - started)
    if args.json_out:
        args.json_out.write_text(json.dumps(as_json(the_plan, results, findings, written), indent=2), encoding="utf-8")
    return 1 if findings else 0


def under_test(executor: str | None) -> str:
    return " with upstream Airflow's executor" if executor == "airflow" else ""


def argument_problem(args) -> str | None:
    if args.file is None:
        return "kubesim explore needs a scenario file (the world to explore), e.g. scenarios/catalogue/default.yaml"
    if args.workers < 1:
        return f"--workers must be at least 1, not {args.workers}"
    if args.runs is not None and args.runs < 1:
        return f"--runs must be at least 1, not {args.runs}"
    if args.duration and parse_duration(args.duration) is None:
        return f"--time {args.duration!r}: expected a duration such as 90s, 10m or 1h"
    for target in (args.json_out, args.out):
        if target is not None and target.parent and not target.parent.exists():
            return f"{target}: its directory {target.parent} does not exist"
    return None


def parse_duration(text: str) -> float | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", text or "")
    if not match:
        return None
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def describe_budget(args, shards: int | None) -> str:
    if shards is None:
        return f"for {args.duration} of wall time"
    return f"{shards * SHARD_RUNS} runs in {shards} shards"


def run_shards(the_plan: Plan, shards: int | None, deadline: float | None, workers: int, dask: str | None,
               console: Console) -> list[ShardResult]:
    """Every shard (or shards until the deadline), on local processes or Dask, with progress."""
    results: list[ShardResult] = []
    columns = (TextColumn("[bold]explore"), BarColumn(), TextColumn("{task.fields[runs]} runs"),
               TextColumn("{task.fields[found]} failure(s)"), TextColumn("{task.fields[rate]:.1f} runs/s"),
               TimeElapsedColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("explore", total=shards, runs=0, found=0, rate=0.0)

        def arrived(result: ShardResult) -> None:
            results.append(result)
            runs = sum(r.runs for r in results)
            found = len({f.invariant for r in results for f in r.findings})
            progress.update(task, advance=1, runs=runs, found=found,
                            rate=runs / max(time.perf_counter() - started, 1e-9))

        wanted = (lambda n: n < shards) if shards is not None else (lambda n: time.monotonic() < deadline)
        if dask:
            _on_dask(the_plan, dask, wanted, workers, arrived)
        else:
            _on_processes(the_plan, workers, wanted, arrived)
    return sorted(results, key=lambda r: r.shard)


def _on_processes(the_plan: Plan, workers: int, wanted, arrived) -> None:
    """Keep every worker busy with the next shard while more are wanted."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context([the_plan.executor])) as pool:
        pending, shard = set(), 0
        while True:
            while wanted(shard) and len(pending) < workers:
                pending.add(pool.submit(run_shard, the_plan, shard))
                shard += 1
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                arrived(future.result())


def _on_dask(the_plan: Plan, address: str, wanted, workers: int, arrived) -> None:
    """The same on a Dask cluster: the plan carries the file's text, so no worker needs the path."""
    from .sweep import DaskUnavailable
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise DaskUnavailable("--dask needs the dask extra: pip install -e '.[dask]'") from None
    try:
        client = Client(address, timeout=10)
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        shard, batch = 0, max(workers, len(client.scheduler_info().get("workers", {})) or 1) * 2
        while wanted(shard):
            futures = []
            while wanted(shard) and len(futures) < batch:
                futures.append(client.submit(run_shard, the_plan, shard, pure=False))
                shard += 1
            for future in as_completed(futures):
                arrived(future.result())


def print_summary(console: Console, findings: list[Finding], written: list[Path], runs: int, seconds: float) -> None:
    console.print(f"{runs} runs in {seconds:.1f}s ({runs / max(seconds, 1e-9):.1f} runs/s); "
                  f"{len(findings)} distinct failure(s)", highlight=False)
    if not findings:
        console.print("[green]no invariant broke[/]")
        return
    table = Table(title="failures found (each shrunk to a minimal schedule)", expand=True)
    table.add_column("invariant", ratio=2)
    table.add_column("faults", justify="right")
    table.add_column("first message", ratio=4, overflow="fold")
    table.add_column("replay", ratio=3, overflow="fold")
    for finding, path in zip(findings, written):
        table.add_row(escape(finding.invariant), str(finding.faults), escape(finding.message[:200]),
                      escape(f"kubesim run {path}"))
    console.print(table)


def as_json(the_plan: Plan, results: list[ShardResult], findings: list[Finding], written: list[Path]) -> dict:
    return {"file": the_plan.path, "seed": the_plan.seed, "kinds": list(the_plan.kinds),
            "runs": sum(r.runs for r in results), "shards": len(results),
            "seconds": round(sum(r.seconds for r in results), 2),
            "findings": [{"invariant": f.invariant, "message": f.message, "faults": f.faults, "shard": f.shard,
                          "file": str(path), "scenario": f.scenario} for f, path in zip(findings, written)]}
