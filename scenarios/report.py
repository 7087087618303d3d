"""The end of ``kubesim run`` in the terminal: what a platform engineer wants to know, in order.

The scenario's description; the faults as they happened and what the executor did about each;
every expectation with its bound, actual value and verdict; every invariant; the metrics with
units and meanings; API calls by verb and status; virtual and wall time; the log's counts; where
the outputs went and the command that replays the run.

Everything here reads the runner's Result generically (checks are name/bound/actual/passed/why
rows), so a new kind of expectation or invariant shows up without a change here. Every string
that comes from a user (file names, scenario ids, variant labels like ``[nodes=2]``) is escaped:
rich would read ``[key=value]`` as markup and drop it.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .glossary import meaning_of
from .runner import under_test
from .samples import calls_by_verb

TICK, CROSS, UNJUDGED = "[green]✓[/]", "[red]✗[/]", "[yellow]–[/]"


def verdict_mark(passed: bool | None) -> str:
    return UNJUDGED if passed is None else TICK if passed else CROSS


def print_report(console: Console, result, outputs: list[tuple[str, str]], log_path: str | None) -> None:
    verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
    console.rule(f"{escape(result.scenario_id)} (seed {result.seed}{under_test(result)}): {verdict}")
    if result.description:
        console.print(escape(result.description), highlight=False)
    console.print(fault_table(result))
    console.print(check_table("Expectations (the scenario file)", result.expectations))
    console.print(check_table("Invariants (every run)", result.invariants, bounds=False))
    console.print(metric_table(result))
    console.print(api_table(result))
    for line in footer(result, outputs, log_path):
        console.print(line, soft_wrap=True, highlight=False)


def fault_table(result) -> Table:
    table = Table(title="Faults as they happened", title_justify="left", show_lines=True, expand=False)
    table.add_column("when", no_wrap=True)
    table.add_column("fault")
    table.add_column("what the executor did")
    if not result.faults:
        table.add_row("-", "no faults in this scenario", "")
    for event in result.faults:
        fault = escape(event.label) + (f"\n[dim]{escape(event.detail)}[/]" if event.detail else "")
        table.add_row(event.when(), fault, escape("\n".join(event.reactions)))
    return table


def check_table(title: str, checks: list, bounds: bool = True) -> Table:
    """Expectations show their bound; invariants (whose bound is always "holds") do not."""
    table = Table(title=title, title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("check")
    if bounds:
        table.add_column("bound")
    table.add_column("actual")
    for check in checks:
        name = escape(check.name) + (f"\n[dim]{escape(check.why)}[/]" if check.why else "")
        cells = [verdict_mark(check.passed), name] + [escape(check.bound)] * bounds + [escape(check.actual)]
        table.add_row(*cells)
    return table


def metric_table(result) -> Table:
    table = Table(title="Metrics (`kubesim metrics` explains each)", title_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column("meaning")
    for name, value in result.metrics.items():
        meaning = meaning_of(name)
        table.add_row(escape(name), f"{value:,.4g}" if isinstance(value, float) else f"{value:,}",
                      meaning.unit, f"[dim]{escape(meaning.short)}[/]")
    return table


def api_table(result) -> Table:
    table = Table(title="API calls by verb and status", title_justify="left")
    table.add_column("verb", no_wrap=True)
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column("by status")
    for verb, statuses in sorted(calls_by_verb(result.api_calls).items()):
        by_status = ", ".join(f"{status} x{n:,}" for status, n in sorted(statuses.items()))
        table.add_row(escape(verb), f"{sum(statuses.values()):,}", escape(by_status))
    return table


def footer(result, outputs: list[tuple[str, str]], log_path: str | None) -> list[str]:
    speed = result.virtual_seconds / result.wall_seconds if result.wall_seconds else 0
    lines = [f"time: {result.virtual_seconds:,.1f} virtual seconds in {result.wall_seconds:,.2f} wall "
             f"seconds ({speed:,.0f}x)"]
    counts = result.log_counts
    logged = (f"{counts.get('ERROR', 0):,} errors, {counts.get('WARNING', 0):,} warnings, "
              f"{counts.get('INFO', 0):,} info lines")
    lines.append(f"logs: {logged}" + (f" in {escape(log_path)}" if log_path else ""))
    for what, path in outputs:
        lines.append(f"{what}: {escape(path)}")
    lines.append(f"replay: {escape(result.replay)}")
    return lines
