"""The executor's and the harness's log lines of one run, stamped with virtual time.

A passing run is quiet: these lines go to a log file (``kubesim run --log``) or, with ``-v``,
to the terminal, and the report counts warnings and errors. The fault timeline reads them to
say what the executor did about each fault.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# upstream Airflow's executor too (scenarios.upstream sends its lines to the standard logging)
PACKAGES = ("executor", "fakecluster", "scenarios", "airflow.providers.cncf.kubernetes")
KEEP = 200_000  # lines kept in memory; beyond, lines are only counted


@dataclass(slots=True)
class LogLine:
    t: float            # virtual seconds
    level: str
    logger: str
    message: str
    template: str       # the message before its arguments: what groups repeats together

    def render(self) -> str:
        return f"t={self.t:10.3f}s {self.level:<7} {self.logger}: {self.message}"


class RunLog(logging.Handler):
    """Captures the packages' log records (INFO and up) while a run is in progress. Records
    still propagate (pytest shows them with a failure); ``quiet_root`` keeps them off the
    terminal where nothing else handles them (the command line)."""

    def __init__(self, clock: Callable[[], float], echo: Callable[[str], None] | None = None):
        super().__init__(logging.INFO)
        self.clock, self.echo = clock, echo
        self.lines: list[LogLine] = []
        self.counts: Counter = Counter()
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + (self.formatter or logging.Formatter()).formatException(record.exc_info)
        line = LogLine(self.clock(), record.levelname, record.name, message, str(record.msg))
        self.counts[record.levelname] += 1
        if len(self.lines) < KEEP:
            self.lines.append(line)
        if self.echo is not None:
            self.echo(line.render())

    def __enter__(self) -> "RunLog":
        for name in PACKAGES:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        for name, level in self._levels.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(level)

    def summary(self) -> str:
        kinds = [("ERROR", "error"), ("WARNING", "warning"), ("INFO", "info line")]
        parts = [f"{self.counts[level]:,} {word}{'s' * (self.counts[level] != 1)}" for level, word in kinds]
        return ", ".join(parts)


class quiet_root:
    """While active, the root logger has a handler, so Python's last resort does not print
    warnings (and their tracebacks) on the terminal: they are in the run's log."""

    def __enter__(self):
        self.handler = logging.NullHandler()
        logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self.handler)


def write_log(path: Path, sections: list[tuple[str, RunLog | None, list[LogLine]]]) -> None:
    """One file for a run of one or more scenarios: a header per scenario, then its lines."""
    with open(path, "w", encoding="utf-8") as out:
        for title, _log, lines in sections:
            out.write(f"== {title}\n")
            for line in lines:
                out.write(line.render() + "\n")
