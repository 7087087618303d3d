"""``kubesim compare``: scenarios run with each executor under test, in one side-by-side table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .loader import ScenarioError

BAD_INPUT = 2
HEADERS = {"violations": "invariant violations", "tasks_failed": "tasks failed", "watcher_deaths": "watcher deaths",
           "watch_restarts": "watch restarts", "replayed_events": "replayed events",
           "deletes_per_pod": "DELETEs per deleted pod", "api_errors": "API errors (verb status)",
           "makespan": "makespan", "result_latency": "result latency p50 / p99"}


def add_command(commands) -> None:
    compare = commands.add_parser("compare", help="run scenarios with each executor under test and put them "
                                  "side by side (kubesim's and upstream Airflow's)")
    compare.add_argument("files", type=Path, nargs="+", help="scenario files (every matrix variant runs)")
    compare.add_argument("--executor", dest="executors", action="append", choices=("kubesim", "airflow"),
                         help="an executor to run (repeat; default: kubesim and airflow)")
    compare.add_argument("--seed", type=int, help="override the files' seeds")
    compare.add_argument("--workers", type=int, default=1, help="runs at once, in worker processes (default 1)")
    compare.add_argument("--all", dest="everything", action="store_true",
                         help="also the scenarios marked scale or slow (left out by default, as under pytest)")
    compare.add_argument("--json", type=Path, dest="json_out", help="write the rows as JSON here")
    compare.add_argument("--markdown", type=Path, help="write the table as Markdown here (as in the README)")
    compare.set_defaults(handler=cmd_compare)


def cmd_compare(args, console: Console) -> int:
    from .cli import bad_output
    from .compare import compare, scenarios_of
    from .upstream import executor_problem
    executors = list(dict.fromkeys(args.executors or ["kubesim", "airflow"]))
    if bad_output("compare", "--json", args.json_out) or bad_output("compare", "--markdown", args.markdown, (".md",)):
        return BAD_INPUT
    if args.workers < 1:
        print(f"kubesim compare: --workers must be at least 1, not {args.workers}", file=sys.stderr)
        return BAD_INPUT
    problem = executor_problem(executors)
    if problem:
        print(f"kubesim compare: {problem}", file=sys.stderr)
        return BAD_INPUT
    try:
        chosen, left_out = scenarios_of(args.files, args.everything)   # every file checked before anything runs
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return BAD_INPUT
    for loaded in left_out:
        print(f"  {loaded.id}: left out (marked {', '.join(loaded.scenario.markers)}; --all runs it)", file=sys.stderr)
    if not chosen:
        print("kubesim compare: no scenario to run (all are marked scale or slow; --all runs them)", file=sys.stderr)
        return BAD_INPUT
    rows = compare(args.files, executors, args.seed, args.workers, everything=args.everything,
                   on_done=lambda row: print(progress_line(row), file=sys.stderr, flush=True))
    console.print(table(rows))
    for row in rows:
        if row.error:
            console.print(f"[yellow]{escape(row.scenario)} with {row.executor} did not run:[/] {escape(row.error)}",
                          soft_wrap=True)
    if args.json_out:
        args.json_out.write_text(json.dumps([row.to_json() for row in rows], indent=2), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown(rows), encoding="utf-8")
    return 0


def progress_line(row) -> str:
    outcome = "did not run" if row.error else ("passed" if row.passed else "failed")
    return f"  {row.scenario} with {row.executor}: {outcome} ({row.wall_seconds:.1f}s)"


def table(rows) -> Table:
    """A section per scenario, a row per measure, a column per executor: side by side in 80 columns."""
    from .compare import COLUMNS, cells
    executors = list(dict.fromkeys(row.executor for row in rows))
    grid = Table(title="kubesim compare: the same scenarios, seeds and faults, per executor")
    grid.add_column("scenario: measure", overflow="fold", ratio=1)
    for executor in executors:
        grid.add_column(executor, overflow="fold", ratio=1)
    by_scenario: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_scenario.setdefault(row.scenario, {})[row.executor] = cells(row)
    for scenario, shown in by_scenario.items():
        grid.add_row(f"[bold]{escape(scenario)}[/]", *("" for _ in executors))
        for number, column in enumerate(COLUMNS):
            grid.add_row(f"  {HEADERS[column]}", *(escape(shown.get(e, {}).get(column, "-")) for e in executors),
                         end_section=number == len(COLUMNS) - 1)
    return grid


def markdown(rows) -> str:
    from .compare import COLUMNS, cells
    lines = ["| scenario | executor | " + " | ".join(HEADERS[c] for c in COLUMNS) + " |",
             "|" + "---|" * (len(COLUMNS) + 2)]
    previous = None
    for row in rows:
        shown = cells(row)
        name = f"`{row.scenario}`" if row.scenario != previous else ""
        lines.append(f"| {name} | {row.executor} | " + " | ".join(shown[c].replace("|", "\\|") for c in COLUMNS) + " |")
        previous = row.scenario
    return "\n".join(lines) + "\n"
