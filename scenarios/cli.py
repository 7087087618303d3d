"""The ``kubesim`` command line: run, validate and export scenarios; a quick demo.

Exit status: 0 passed, 1 a scenario failed, 2 bad input (a scenario file or an argument).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .loader import LoadedScenario, ScenarioError, load, select_variant

BAD_INPUT = 2
PROGRESS_EVERY = 10.0  # wall seconds between progress lines when output is not a terminal


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False)
    try:
        return args.handler(args, console)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubesim", description="Test and size Kubernetes task executors "
                                     "against a simulated cluster in virtual time.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario file and report")
    run.add_argument("file", type=Path)
    run.add_argument("--seed", type=int, help="override the file's seed")
    run.add_argument("--variant", help="run only this matrix entry (as shown in the summary)")
    run.add_argument("--json", type=Path, dest="json_out", help="write the result(s) as JSON here")
    run.add_argument("--plot", type=Path, help="pods by phase and queue depth over time (.png or .html)")
    run.set_defaults(handler=cmd_run)

    sweep = commands.add_parser("sweep", help="run a grid of variants in parallel and compare them")
    sweep.add_argument("file", type=Path)
    sweep.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2",
                       help="a dotted scenario key and its values, e.g. "
                            "executor.worker_pods_creation_batch_size=1,8,32 (repeat for a grid)")
    sweep.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    sweep.add_argument("--seed", type=int, help="override the file's seed")
    sweep.add_argument("--metric", default="makespan", help="the metric to plot (default makespan)")
    sweep.add_argument("--json", type=Path, dest="json_out", help="write the rows as JSON here")
    sweep.add_argument("--plot", type=Path, help="the metric over the grid (.png or .html)")
    sweep.add_argument("--dask", metavar="ADDRESS", help="run the points on this Dask scheduler")
    sweep.set_defaults(handler=cmd_sweep)

    validate = commands.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("files", type=Path, nargs="+")
    validate.add_argument("-v", "--verbose", action="store_true",
                          help="also show the defaults that apply (what the file leaves out)")
    validate.set_defaults(handler=cmd_validate)

    schema = commands.add_parser("schema", help="print the scenario JSON Schema (for editors)")
    schema.add_argument("--out", type=Path, help="write it to this file instead")
    schema.set_defaults(handler=cmd_schema)

    demo = commands.add_parser("demo", help="a short simulated demo through the raw client")
    demo.add_argument("--seed", type=int, default=7, help="RNG seed (same seed, same run)")
    demo.add_argument("--pods", type=int, default=24, help="how many pods to launch (at least 2)")
    demo.set_defaults(handler=cmd_demo)

    serve = commands.add_parser("serve", help="serve a simulated cluster over HTTP in real time (for kubectl)")
    serve.add_argument("file", type=Path, nargs="?", help="a scenario file (default: a 3-node cluster)")
    serve.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free port)")
    serve.add_argument("--speed", type=float, default=1.0, help="virtual seconds per wall second")
    serve.add_argument("--kubeconfig", type=Path, default=Path("kubesim.kubeconfig"),
                       help="where to write the kubeconfig (default ./kubesim.kubeconfig)")
    serve.add_argument("--seed", type=int, help="override the file's seed")
    serve.add_argument("--variant", help="the matrix entry to serve, for a file with several")
    serve.add_argument("--until", type=float, metavar="SECONDS",
                       help="stop when virtual time reaches this (default: run until Ctrl-C)")
    serve.set_defaults(handler=cmd_serve)
    return parser


PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".html")


def bad_plot_path(command: str, plot: Path | None) -> bool:
    """Checked before running: a bad --plot name must not cost a whole run and end in a traceback."""
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        print(f"kubesim {command}: cannot write a plot to {plot}: use a file name ending in "
              f"{', '.join(PLOT_SUFFIXES)}", file=sys.stderr)
        return True
    return False


def cmd_run(args, console: Console) -> int:
    from .runner import describe_failure, run
    if bad_plot_path("run", args.plot):
        return BAD_INPUT
    scenarios = select_variant(load(args.file), args.variant)
    results = []
    for loaded in scenarios:
        results.append(run_with_progress(loaded, args.seed, console, run))
    for result in results:
        print_result(console, result)
        if not result.passed:
            # soft_wrap: never fold the file:line or the replay command, they are copied and pasted
            console.print(describe_failure(result), markup=False, highlight=False, soft_wrap=True)
    if args.json_out:
        args.json_out.write_text(json.dumps([r.to_json() for r in results], indent=2))
        console.print(f"wrote {args.json_out}", soft_wrap=True)
    if args.plot:
        from .plots import plot_run
        for result in results:
            out = args.plot if len(results) == 1 else args.plot.with_stem(f"{args.plot.stem}-{result.scenario_id}")
            console.print(f"wrote {plot_run(result, out)}", soft_wrap=True)
    return 0 if all(r.passed for r in results) else 1


def cmd_sweep(args, console: Console) -> int:
    from .schema import METRICS
    from .sweep import iter_table, parse_sets, points, sweep
    if bad_plot_path("sweep", args.plot):
        return BAD_INPUT
    if args.metric not in METRICS:
        print(f"kubesim sweep: unknown metric {args.metric!r}; known: {', '.join(METRICS)}", file=sys.stderr)
        return BAD_INPUT
    try:
        grid = parse_sets(args.sets)
    except ValueError as exc:
        print(f"kubesim sweep: {exc}", file=sys.stderr)
        return BAD_INPUT
    if not grid:
        print("kubesim sweep: give at least one --set KEY=V1,V2", file=sys.stderr)
        return BAD_INPUT
    total = len(points(grid))
    with Progress(TextColumn("[bold]sweep"), BarColumn(), TextColumn("{task.completed}/{task.total} points"),
                  TimeElapsedColumn(), console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("sweep", total=total)
        rows = sweep(args.file, grid, workers=args.workers, seed=args.seed, dask_address=args.dask,
                     on_row=lambda row: bar.advance(task))
    keys = list(grid)
    shown = [args.metric] + [m for m in ("throughput", "tasks_failed", "api_errors") if m != args.metric]
    table = Table(title=f"sweep of {args.file} ({total} points)")
    for column in [short_key(k) for k in keys] + shown + ["checks"]:
        table.add_column(column, justify="right")
    for cells in iter_table(rows, keys, shown):
        table.add_row(*cells)
    console.print(table)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2, default=str))
        console.print(f"wrote {args.json_out}", soft_wrap=True)
    if args.plot:
        from .plots import plot_sweep
        console.print(f"wrote {plot_sweep(rows, keys[:2], args.metric, args.plot)}", soft_wrap=True)
    return 0 if all(r["passed"] for r in rows) else 1


def run_with_progress(loaded: LoadedScenario, seed, console: Console, run):
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[states]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(loaded.id, total=1.0, states="")

        last_line = [time.monotonic()]

        def progress(now: float, states: dict) -> None:
            total = sum(states.values()) or 1
            done = states.get("success", 0) + states.get("failed", 0)
            if console.is_terminal:
                bar.update(task, completed=done / total, states=f"t={now:,.0f}s {states}")
            elif time.monotonic() - last_line[0] >= PROGRESS_EVERY:  # logs: a line now and then
                last_line[0] = time.monotonic()
                print(f"{loaded.id}: {done}/{total} tasks done, virtual t={now:,.0f}s {states}",
                      file=sys.stderr, flush=True)

        return run(loaded, seed=seed, progress=progress)


def print_result(console: Console, result) -> None:
    verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
    table = Table(title=f"{result.scenario_id} (seed {result.seed}): {verdict}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:g}")
    console.print(table)


def short_key(dotted: str) -> str:
    """The part of a dotted key that names it (executor.worker_pods_creation_batch_size -> the last)."""
    parts = dotted.split(".")
    return parts[-1] if len(parts[-1]) > 8 or len(parts) == 1 else ".".join(parts[-2:])


def cmd_validate(args, console: Console) -> int:
    status = 0
    for path in args.files:
        try:
            loaded = load(path)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            status = BAD_INPUT
            continue
        console.print(escape(f"{path}: ok ({len(loaded)} scenario{'s' * (len(loaded) > 1)})"), soft_wrap=True)
        if args.verbose:
            from .defaults import defaults_in_force
            for scenario in loaded:
                console.print(escape(f"  {scenario.id}: defaults that apply (not set in the file):"), soft_wrap=True)
                for key, value in defaults_in_force(scenario.scenario):
                    console.print(escape(f"    {key}: {value}"), soft_wrap=True, highlight=False)
    return status


def cmd_schema(args, console: Console) -> int:
    from .schema import json_schema
    text = json.dumps(json_schema(), indent=2)
    if args.out:
        args.out.write_text(text + "\n")
        console.print(f"wrote {args.out}", soft_wrap=True)
    else:
        print(text)
    return 0


def cmd_demo(args, console: Console) -> int:
    from .demo import run_demo
    if args.pods < 2:
        print("kubesim demo: --pods must be at least 2", file=sys.stderr)
        return BAD_INPUT
    run_demo(seed=args.seed, pods=args.pods, console=console)
    return 0


def cmd_serve(args, console: Console) -> int:
    from .serve import cmd_serve as serve
    return serve(args, console)


if __name__ == "__main__":
    sys.exit(main())
