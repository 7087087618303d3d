"""``kubesim run``: run a scenario file's scenario(s), then report, write the outputs asked for,
and exit 0 (passed), 1 (a scenario failed) or 2 (bad input, checked before anything runs)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from rich.console import Console

from .cli import BAD_INPUT, bad_output, bad_plot_path
from .loader import load, select_variant
from .progress import run_with_progress
from .runlog import quiet_root, write_log
from .upstream import UPSTREAM_INPUT_ERRORS, executor_problem


def cmd_run(args, console: Console) -> int:
    from .runner import describe_failure, run
    if (bad_plot_path("run", args.plot) or bad_output("run", "--json", args.json_out)
            or bad_output("run", "--report", args.report, (".html", ".htm")) or bad_output("run", "--log", args.log)):
        return BAD_INPUT
    scenarios = select_variant(load(args.file), args.variant)
    problem = executor_problem([args.executor or loaded.scenario.under_test for loaded in scenarios])
    if problem:
        print(f"kubesim run: {problem}", file=sys.stderr)
        return BAD_INPUT
    echo = (lambda line: print(first_line(line), file=sys.stderr, flush=True)) if args.verbose else None
    run_one = functools.partial(run, executor=args.executor)
    try:
        with quiet_root():
            results = [run_with_progress(loaded, args.seed, console, run_one, echo) for loaded in scenarios]
    except UPSTREAM_INPUT_ERRORS as exc:
        print(f"kubesim run: {exc}", file=sys.stderr)
        return BAD_INPUT
    outputs = write_outputs(args, results)
    for result in results:
        from .report import print_report
        print_report(console, result, outputs[result.scenario_id], str(args.log))
        if not result.passed:
            # soft_wrap: never fold the file:line or the replay command, they are copied and pasted
            console.print(describe_failure(result), markup=False, highlight=False, soft_wrap=True)
    return 0 if all(r.passed for r in results) else 1


def first_line(line: str) -> str:
    """-v shows each log line once; a traceback stays in the log file (and in the report)."""
    head, _, rest = line.partition("\n")
    return head + (" (traceback in the log file)" if rest else "")


def write_outputs(args, results: list) -> dict[str, list[tuple[str, str]]]:
    """Every output asked for, per scenario: [(what, path)], for the report to say where they went."""
    outputs: dict[str, list[tuple[str, str]]] = {r.scenario_id: [] for r in results}
    write_log(args.log, [(f"{r.scenario_id} (seed {r.seed})", None, r.log_lines) for r in results])
    if args.json_out:
        args.json_out.write_text(json.dumps([r.to_json() for r in results], indent=2))
        for result in results:
            outputs[result.scenario_id].append(("JSON", str(args.json_out)))
    for result in results:
        if args.plot:
            from .plots import plot_run
            out = plot_run(result, per_scenario(args.plot, result, results))
            outputs[result.scenario_id].append(("plot", str(out)))
        if args.report:
            from .html_report import write_html_report
            out = per_scenario(args.report, result, results)
            write_html_report(result, out, outputs[result.scenario_id] + [("report", str(out))], str(args.log))
            outputs[result.scenario_id].append(("report", str(out)))
    return outputs


def per_scenario(path: Path, result, results: list) -> Path:
    return path if len(results) == 1 else path.with_stem(f"{path.stem}-{result.scenario_id}")
