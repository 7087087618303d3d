"""``kubesim sweep``: a grid of scenario keys run in parallel, shown as a table that stays
readable in 80 columns (headers wrap at word boundaries; the full keys are listed under it)."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli import BAD_INPUT, bad_output, bad_plot_path

SHOWN = ("throughput", "tasks_failed", "api_errors")


def cmd_sweep(args, console: Console) -> int:
    from .schema import METRICS
    from .sweep import DaskUnavailable, parse_sets, points, sweep
    if bad_plot_path("sweep", args.plot) or bad_output("sweep", "--json", args.json_out):
        return BAD_INPUT
    problem = sweep_argument_problem(args, METRICS)
    if problem:
        print(f"kubesim sweep: {problem}", file=sys.stderr)
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
    with Progress(TextColumn("[bold]sweep"), BarColumn(), TextColumn("{task.completed} runs"),
                  TimeElapsedColumn(), console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("sweep", total=None)
        try:
            rows = sweep(args.file, grid, workers=args.workers, seed=args.seed, dask_address=args.dask,
                         on_row=lambda row: bar.advance(task), dask_timeout=args.dask_timeout)
        except DaskUnavailable as exc:
            print(f"kubesim sweep: {exc}", file=sys.stderr)
            return BAD_INPUT
    print_sweep(console, args, grid, rows, total)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2, default=str))
        console.print(escape(f"wrote {args.json_out}"), soft_wrap=True)
    if args.plot:
        from .plots import plot_sweep
        console.print(escape(f"wrote {plot_sweep(rows, list(grid)[:2], args.metric, args.plot)}"), soft_wrap=True)
    return 0 if all(r["passed"] for r in rows) else 1


def sweep_argument_problem(args, metrics) -> str | None:
    if args.metric not in metrics:
        return f"unknown metric {args.metric!r}; known: {', '.join(metrics)}"
    if args.workers < 1:
        return f"--workers must be at least 1, not {args.workers}"
    if args.dask_timeout <= 0:
        return f"--dask-timeout must be more than 0 seconds, not {args.dask_timeout:g}"
    return None


def print_sweep(console: Console, args, grid: dict, rows: list[dict], total: int) -> None:
    from .glossary import meaning_of
    from .sweep import iter_table
    keys = list(grid)
    shown = [args.metric] + [m for m in SHOWN if m != args.metric]
    shown = [m for m in shown if m == args.metric or any(row["metrics"][m] for row in rows)]  # no all-zero column
    variants = any(row.get("variant") for row in rows)
    runs = f"{total} points" + (f" x {len(rows) // max(total, 1)} variants" if variants else "")
    headers = ["variant"] * variants + [header(short_key(key)) for key in keys]
    for metric in shown:
        unit = meaning_of(metric).unit
        headers.append(header(metric) + (f" ({unit})" if unit in ("s", "tasks/s") else ""))
    headers.append("checks")
    cells = list(iter_table(rows, keys, shown))
    table = Table(title=escape(f"sweep of {args.file} ({runs})"))
    for i, title in enumerate(headers):
        # as wide as the longest header word or cell, no wider: rich wraps the header between words
        width = max([len(word) for word in title.split()] + [len(row[i]) for row in cells])
        table.add_column(title, justify="right", width=width)
    for row in cells:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print("columns:", highlight=False)
    for key in keys:
        console.print(escape(f"  {header(short_key(key))} = {key}"), highlight=False)
    if variants:
        console.print("variants (the file's matrix, each with its own expectations):", highlight=False)
        labels = {row["variant_number"]: row["variant"] for row in rows}
        for number, label in sorted(labels.items()):
            console.print(escape(f"  {number} = {label}"), highlight=False)
    if any(row.get("overridden") for row in rows):
        console.print("* the variant sets a swept key too: the sweep's value is the one used", highlight=False)


def short_key(dotted: str) -> str:
    """The part of a dotted key that names it: the last part, or the last two when the last is a
    generic word (cluster.api_latency.create.constant -> create.constant)."""
    parts = dotted.split(".")
    return parts[-1] if len(parts[-1]) > 8 or len(parts) == 1 else ".".join(parts[-2:])


def header(name: str) -> str:
    """A column header that wraps between words instead of inside them."""
    return name.replace("_", " ").replace(".", " ")
