"""The fault timeline of a run as it happened: every strike of a repeating fault, every window
(outages, error rules), and what the executor did about each.

Faults are recorded as they strike (``FaultLog.strike``), windows when they are scheduled. After
the run, each gets its reactions: the executor's and the harness's log lines in the fault's
window (grouped by message, with a count), and the API answers that were not a success there.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

REACTION_SECONDS = 60.0   # how long after an instant fault its reactions are looked for
AFTER_WINDOW = 30.0       # and after a window closes
REACTIONS_SHOWN = 4       # distinct log messages shown per fault (the rest are counted)
MESSAGE_CHARS = 150       # a longer message is cut (the log file has it whole)


@dataclass
class FaultEvent:
    start: float
    end: float | None          # a window's end; None for a fault of one instant
    action: str                # the scenario's action name (expire_watches, outage...)
    label: str                 # what a person calls it: "410 storm", "API outage (503)"
    detail: str = ""           # what it did, as the cluster said: "3 watches expired"
    reactions: list[str] = field(default_factory=list)

    @property
    def window(self) -> bool:
        return self.end is not None

    def when(self) -> str:
        if self.end is None:
            return f"t={self.start:g}s"
        end = "end" if self.end == float("inf") else f"{self.end:g}s"
        return f"t={self.start:g}s-{end}"

    def to_json(self) -> dict:
        return {"start": self.start, "end": None if self.end in (None, float("inf")) else self.end,
                "action": self.action, "label": self.label, "detail": self.detail, "reactions": self.reactions}


class FaultLog:
    """Collects the fault events of one run, in the order they strike or are scheduled."""

    def __init__(self):
        self.events: list[FaultEvent] = []

    def window(self, start: float, end: float | None, action: str, label: str) -> None:
        self.events.append(FaultEvent(start, float("inf") if end is None else end, action, label))

    def strike(self, now: float, action: str, label: str, outcome) -> None:
        detail = describe_outcome(action, outcome)
        self.events.append(FaultEvent(now, None, action, label, detail))

    def ordered(self) -> list[FaultEvent]:
        return sorted(self.events, key=lambda e: (e.start, e.end is not None))


def describe_outcome(action: str, outcome) -> str:
    if isinstance(outcome, int) and not isinstance(outcome, bool):
        noun, verb = {"expire_watches": ("watch", "expired"), "stall_watches": ("watch", "stalled"),
                      "drop_watches": ("watch connection", "reset"),
                      "evict": ("pod", "evicted")}.get(action, ("object", "affected"))
        return f"{outcome} {noun}{'es' * (outcome != 1) if noun == 'watch' else 's' * (outcome != 1)} {verb}"
    return ""


def label_of(fault) -> str:
    """A short name for a scenario fault (schema.Fault)."""
    action = fault.action
    if action == "expire_watches":
        return "410 storm"
    if action == "compact":
        return f"watch cache compacted to {fault.compact.keep} events"
    if action == "stall_watches":
        seconds = fault.stall_watches.seconds
        return f"watches stalled {seconds:g}s" if seconds else "watches stalled until the client gives up"
    if action == "drop_watches":
        return "watch connections dropped"
    if action == "restart_scheduler":
        return "scheduler crash, successor started"
    if action == "start_scheduler":
        return "another scheduler started"
    if action == "lose_node":
        spec = fault.lose_node
        back = f", back after {spec.restore_after:g}s" if spec.restore_after else ""
        return f"{spec.node} lost{back}"
    if action == "delete_node":
        return f"{fault.delete_node.node} deleted"
    if action == "evict":
        return f"evict {fault.evict.count} running pod{'s' * (fault.evict.count > 1)}"
    if action == "api_errors":
        rule = fault.api_errors
        chance = "" if rule.probability >= 1 else f" {rule.probability:.0%} of"
        count = f" (first {rule.count})" if rule.count else ""
        return f"{rule.code} on{chance} {'/'.join(rule.verbs)}{count}"
    if action == "outage":
        return "API outage (503)" if fault.outage.mode == "unavailable" else "API outage (connections refused)"
    if action == "connection_resets":
        return f"connection resets ({fault.connection_resets:.0%} of requests)"
    return action


def add_reactions(events: list[FaultEvent], log_lines: list, calls: list, run_end: float) -> None:
    """Fill each event's reactions from the run's log lines and API calls (both in time order)."""
    starts = sorted(e.start for e in events if not e.window)
    log_times = [line.t for line in log_lines]
    call_times = [call.time for call in calls]
    for event in events:
        begin, end = event.start, reaction_end(event, starts, run_end)
        failed = Counter(str(call.status) for call in calls[bisect.bisect_left(call_times, begin):
                                                             bisect.bisect_left(call_times, end)]
                         if not (isinstance(call.status, int) and call.status < 400))
        lines = log_lines[bisect.bisect_left(log_times, begin):bisect.bisect_left(log_times, end)]
        event.reactions = summarise(lines, begin)
        if failed:
            answers = ", ".join(f"{status} x{n}" for status, n in sorted(failed.items()))
            event.reactions.append(f"API answers that were not a success: {answers}")
        if not event.reactions:
            event.reactions.append("nothing logged, every API call answered")


def reaction_end(event: FaultEvent, instant_starts: list[float], run_end: float) -> float:
    if event.window:
        return min(event.end + AFTER_WINDOW, run_end + 1e-9) if event.end != float("inf") else run_end + 1e-9
    later = [s for s in instant_starts if s > event.start]
    return min([event.start + REACTION_SECONDS, *later[:1]])


def summarise(lines: list, begin: float) -> list[str]:
    """Log lines grouped by message template, in order of first appearance, with counts."""
    groups: dict[str, list] = {}
    for line in lines:
        groups.setdefault(line.template, []).append(line)
    shown = []
    for template, members in list(groups.items())[:REACTIONS_SHOWN]:
        first = members[0]
        count = f" (x{len(members)})" if len(members) > 1 else ""
        message = first.message.splitlines()[0] if first.message else ""
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS - 1] + "…"
        shown.append(f"+{first.t - begin:.1f}s {message}{count}")
    hidden = len(groups) - REACTIONS_SHOWN
    if hidden > 0:
        shown.append(f"... and {hidden} other kind{'s' * (hidden > 1)} of message (see the log)")
    return shown
