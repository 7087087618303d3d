"""``kubesim mutate``: the mutation check's command line (see ``scenarios.mutation``)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .mutation import CATALOGUE, MUTANTS, MutationError, Outcome, load_mutants, run_all

BAD_INPUT = 2


def add_command(commands) -> None:
    mutate = commands.add_parser("mutate", help="put upstream bugs back into the executor, one at a time, "
                                 "and check that the catalogue fails for each")
    mutate.add_argument("names", nargs="*", help="only these mutants (default: all)")
    mutate.add_argument("--mutants", type=Path, default=MUTANTS, help="the mutants file")
    mutate.add_argument("--catalogue", type=Path, default=CATALOGUE, help="the scenario files to run")
    mutate.add_argument("--workers", type=int, default=2, help="mutants checked at once (processes)")
    mutate.add_argument("--every-scenario", action="store_true",
                        help="run every scenario against each mutant, not only until the first kill")
    mutate.add_argument("--seeds", default="", help="comma-separated seeds: the killing scenario must kill the "
                        "mutant on each of these too (e.g. 101,202)")
    mutate.add_argument("--json", type=Path, dest="json_out", help="write the outcomes as JSON here")
    mutate.add_argument("--list", action="store_true", help="list the mutants and their guards, run nothing")
    mutate.set_defaults(handler=cmd_mutate)


def cmd_mutate(args, console: Console) -> int:
    try:
        mutants = load_mutants(args.mutants)
        if args.names:
            unknown = sorted(set(args.names) - {m.name for m in mutants})
            if unknown:
                raise MutationError(f"no such mutant: {', '.join(unknown)} (see kubesim mutate --list)")
            mutants = [m for m in mutants if m.name in args.names]
        if args.list:
            for mutant in mutants:
                console.print(f"[bold]{mutant.name}[/]: {escape(mutant.behaviour)} "
                              f"(guarded by {', '.join(mutant.guarded_by)})", highlight=False)
            return 0
        if args.workers < 1:
            raise MutationError(f"--workers must be at least 1, not {args.workers}")
        try:
            seeds = tuple(int(seed) for seed in args.seeds.split(",") if seed.strip())
        except ValueError:
            raise MutationError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 101,202") from None
        console.print(f"checking {len(mutants)} mutants against {args.catalogue} ({args.workers} at a time)")
        outcomes = run_all(mutants, args.catalogue, args.workers, args.every_scenario,
                           on_done=lambda outcome: console.print(progress_line(outcome), highlight=False),
                           seeds=seeds)
    except MutationError as exc:
        console.print(f"[red]{escape(str(exc))}[/]", soft_wrap=True)
        return BAD_INPUT
    console.print(table(outcomes))
    killed = sum(o.killed and all(o.other_seeds.values()) for o in outcomes)
    rate = killed / len(outcomes) if outcomes else 1.0
    seeds_note = f" (killed on its own seed and on seeds {args.seeds})" if seeds else ""
    console.print(f"kill rate: {killed}/{len(outcomes)} = {rate:.0%}{seeds_note}", highlight=False)
    if args.json_out:
        args.json_out.write_text(json.dumps([as_json(o) for o in outcomes], indent=2), encoding="utf-8")
    return 0 if killed == len(outcomes) else 1


def progress_line(outcome: Outcome) -> str:
    name = escape(outcome.mutant.name)
    if outcome.error:
        return f"  [red]error[/]   {name}: {escape(outcome.error)}"
    if outcome.killed:
        missed = [str(seed) for seed, killed in outcome.other_seeds.items() if not killed]
        if missed:
            return (f"  [red]SURVIVED[/] {name} on seed(s) {', '.join(missed)} "
                    f"(killed by {escape(outcome.killed_by)} on its own seed)")
        return f"  [green]killed[/]  {name} by {escape(outcome.killed_by)} ({outcome.seconds:.1f}s)"
    return f"  [red]SURVIVED[/] {name}: {outcome.scenarios_run} scenarios passed ({outcome.seconds:.1f}s)"


def table(outcomes: list[Outcome]) -> Table:
    """One row a mutant: which scenario killed it and how (the failed check that names the behaviour
    it guards, else the first failure);
    ``kubesim mutate --list`` says which upstream behaviour each mutant puts back."""
    grid = Table(title="mutation check", expand=True)
    grid.add_column("mutant", no_wrap=True, ratio=2)
    grid.add_column("killed by", ratio=2, overflow="fold")
    grid.add_column("failure", ratio=5, overflow="fold")
    for outcome in outcomes:
        killer = escape(outcome.killed_by) if outcome.killed else ("[red]error[/]" if outcome.error else "[red]SURVIVED[/]")
        grid.add_row(escape(outcome.mutant.name), killer, escape(outcome.failure or outcome.error)[:240])
    return grid


def as_json(outcome: Outcome) -> dict:
    return {"mutant": outcome.mutant.name, "behaviour": outcome.mutant.behaviour, "killed": outcome.killed,
            "killed_by": outcome.killed_by, "failure": outcome.failure, "error": outcome.error,
            "scenarios_run": outcome.scenarios_run, "other_seeds": outcome.other_seeds, "seconds": round(outcome.seconds, 2), "runs": outcome.runs}
