"""The ``kubesim`` command line: run, validate and export scenarios; a quick demo.

Exit status: 0 passed, 1 a scenario failed, 2 bad input (a scenario file or an argument).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .loader import ScenarioError, load
from .explore_cli import add_command as add_explore_command
from .compare_cli import add_command as add_compare_command
from .mutation_cli import add_command as add_mutate_command

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
    run.add_argument("--plot", type=Path, help="pods by phase and queue depth over time (.png or .html)")
    run.add_argument("--report", type=Path, help="the whole report as one self-contained HTML file")
    run.add_argument("--log", type=Path, default=Path("kubesim.log"),
                     help="where the executor's and harness's log lines go (default ./kubesim.log)")
    run.add_argument("-v", "--verbose", action="store_true", help="also print the log lines as they come")
    run.add_argument("--executor", choices=("kubesim", "airflow"),
                     help="the executor under test (default: the file's under_test, else kubesim): "
                          "airflow is upstream's unmodified KubernetesExecutor (needs the airflow extra)")
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
    sweep.add_argument("--dask-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="how long to try to reach the Dask scheduler (default 10)")
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

    metrics = commands.add_parser("metrics", help="list every metric with its unit and meaning")
    metrics.set_defaults(handler=cmd_metrics)

    add_mutate_command(commands)
    add_explore_command(commands)
    add_compare_command(commands)

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


def bad_output(command: str, option: str, path: Path | None, suffixes: tuple[str, ...] = ()) -> bool:
    """Checked before running: a bad output path must not cost a whole run and end in a traceback."""
    if path is None:
        return False
    problem = None
    if suffixes and path.suffix.lower() not in suffixes:
        problem = f"use a file name ending in {', '.join(suffixes)}"
    elif not path.parent.is_dir():
        problem = f"the directory {path.parent} does not exist (create it first)"
    elif path.is_dir():
        problem = "that is a directory; give a file name"
    elif not os.access(path.parent, os.W_OK):
        problem = f"the directory {path.parent} is not writable"
    if problem:
        print(f"kubesim {command}: cannot write {option} {path}: {problem}", file=sys.stderr)
    return problem is not None


def bad_plot_path(command: str, plot: Path | None) -> bool:
    return bad_output(command, "--plot", plot, PLOT_SUFFIXES)


def cmd_run(args, console: Console) -> int:
    from .cli_run import cmd_run as run
    return run(args, console)


def cmd_sweep(args, console: Console) -> int:
    from .cli_sweep import cmd_sweep as sweep
    return sweep(args, console)


def cmd_metrics(args, console: Console) -> int:
    from .glossary import meaning_of
    from .schema import METRICS
    table = Table(title="kubesim metrics (times in virtual seconds)", title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column("meaning")
    for name in METRICS:
        table.add_row(name, meaning_of(name).unit, escape(meaning_of(name).meaning))
    console.print(table)
    return 0


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
    if bad_output("schema", "--out", args.out):
        return BAD_INPUT
    if args.out:
        args.out.write_text(text + "\n")
        console.print(escape(f"wrote {args.out}"), soft_wrap=True)
    else:
        print(text)
    return 0


def cmd_demo(args, console: Console) -> int:
    from .demo import run_demo
    from .runlog import quiet_root
    if args.pods < 2:
        print("kubesim demo: --pods must be at least 2", file=sys.stderr)
        return BAD_INPUT
    try:
        with quiet_root():  # a crashed process's warning would print its traceback a second time
            run_demo(seed=args.seed, pods=args.pods, console=console)
    except Exception as exc:
        print("kubesim demo: the simulation ended with an error:\n"
              + "".join(traceback.format_exception(exc)).rstrip(), file=sys.stderr)
        return 1
    return 0


def cmd_serve(args, console: Console) -> int:
    from .serve import cmd_serve as serve
    return serve(args, console)


if __name__ == "__main__":
    sys.exit(main())
