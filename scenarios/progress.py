"""Progress of a running scenario: a bar with tasks done, virtual time and virtual/wall speed on
a terminal; a line now and then otherwise (CI logs)."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

LINE_EVERY = 10.0  # wall seconds between progress lines when output is not a terminal


def speed_text(virtual: float, wall: float) -> str:
    """``t=512s virtual, 38x wall``: how far the run is and how fast virtual time moves."""
    speed = virtual / wall if wall > 0 else 0.0
    return f"t={virtual:,.0f}s virtual, {speed:,.{0 if speed >= 10 else 1}f}x wall"


def run_with_progress(loaded, seed, console: Console, run, echo=None):
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("tasks"), TextColumn("{task.fields[speed]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(escape(loaded.id), total=None, speed="building the world")
        started = last_line = None  # from the simulation's first report: building the world is not running it

        def progress(now: float, states: dict) -> None:
            nonlocal started, last_line
            if started is None:
                started = last_line = time.monotonic()
            total = sum(states.values())
            done = states.get("success", 0) + states.get("failed", 0)
            wall = time.monotonic() - started
            if console.is_terminal:
                bar.update(task, completed=done, total=total, speed=speed_text(now, wall))
            elif time.monotonic() - last_line >= LINE_EVERY:  # logs: a line now and then
                last_line = time.monotonic()
                print(f"{loaded.id}: {done:,}/{total:,} tasks done, {speed_text(now, wall)}",
                      file=sys.stderr, flush=True)

        return run(loaded, seed=seed, progress=progress, echo=echo)
