"""The ``kubesim`` command line: run, validate and export scenarios; a quick demo.

Exit status: 0 passed, 1 a scenario failed, 2 bad input (a scenario file or an argument).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .loader import LoadedScenario, ScenarioError, load

BAD_INPUT = 2


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
    run.set_defaults(handler=cmd_run)

    validate = commands.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("files", type=Path, nargs="+")
    validate.set_defaults(handler=cmd_validate)

    schema = commands.add_parser("schema", help="print the scenario JSON Schema (for editors)")
    schema.add_argument("--out", type=Path, help="write it to this file instead")
    schema.set_defaults(handler=cmd_schema)

    demo = commands.add_parser("demo", help="a short simulated demo through the raw client")
    demo.add_argument("--seed", type=int, default=7, help="RNG seed (same seed, same run)")
    demo.add_argument("--pods", type=int, default=24, help="how many pods to launch (at least 2)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def cmd_run(args, console: Console) -> int:
    from .runner import describe_failure, run
    scenarios = select(load(args.file), args.variant)
    results = []
    for loaded in scenarios:
        results.append(run_with_progress(loaded, args.seed, console, run))
    for result in results:
        print_result(console, result)
        if not result.passed:
            console.print(describe_failure(result), markup=False, highlight=False)
    if args.json_out:
        args.json_out.write_text(json.dumps([r.to_json() for r in results], indent=2))
        console.print(f"wrote {args.json_out}")
    return 0 if all(r.passed for r in results) else 1


def select(scenarios: list[LoadedScenario], variant: str | None) -> list[LoadedScenario]:
    if variant is None:
        return scenarios
    chosen = [s for s in scenarios if s.variant == variant]
    if not chosen:
        known = ", ".join(s.variant for s in scenarios) or "(the file has no matrix)"
        raise ScenarioError(scenarios[0].path, [(None, "matrix", f"no variant {variant!r}; known: {known}")])
    return chosen


def run_with_progress(loaded: LoadedScenario, seed, console: Console, run):
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[states]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(loaded.id, total=1.0, states="")

        def progress(now: float, states: dict) -> None:
            total = sum(states.values()) or 1
            done = states.get("success", 0) + states.get("failed", 0)
            bar.update(task, completed=done / total, states=f"t={now:,.0f}s {states}")

        return run(loaded, seed=seed, progress=progress if console.is_terminal else None)


def print_result(console: Console, result) -> None:
    verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
    table = Table(title=f"{result.scenario_id} (seed {result.seed}): {verdict}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:g}")
    console.print(table)


def cmd_validate(args, console: Console) -> int:
    status = 0
    for path in args.files:
        try:
            loaded = load(path)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            status = BAD_INPUT
            continue
        console.print(f"{path}: ok ({len(loaded)} scenario{'s' * (len(loaded) > 1)})")
    return status


def cmd_schema(args, console: Console) -> int:
    from .schema import json_schema
    text = json.dumps(json_schema(), indent=2)
    if args.out:
        args.out.write_text(text + "\n")
        console.print(f"wrote {args.out}")
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


if __name__ == "__main__":
    sys.exit(main())
