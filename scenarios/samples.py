"""Distributions and series of a run for the report: result latency (a pod ended -> the executor
reported it), pod start latency, and API calls over time by status."""

from __future__ import annotations

from collections import Counter

from executor import State

from .invariants import TERMINAL_PHASES

SERIES_BINS = 60  # API calls over time: this many bins over the run


def try_of_pod(pod: dict) -> tuple | None:
    annotations = pod["metadata"].get("annotations") or {}
    if "dag_id" not in annotations or "try_number" not in annotations:
        return None
    return (annotations["dag_id"], annotations["task_id"], annotations.get("run_id"),
            str(annotations.get("map_index", "-1")), str(annotations["try_number"]))


class ResultLatency:
    """When each try's pod turned terminal, and when the executor reported that try's end."""

    def __init__(self, now):
        self.now = now
        self.ended: dict[tuple, float] = {}
        self.samples: list[float] = []
        self._reported: set[tuple] = set()

    def on_pod_change(self, change) -> None:
        phase = (change.obj.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            key = try_of_pod(change.obj)
            if key is not None:
                self.ended.setdefault(key, self.now())

    def on_state(self, key, state, info) -> None:
        if state not in (State.SUCCESS, State.FAILED, None):
            return
        try_key = (key.dag_id, key.task_id, key.run_id, str(key.map_index), str(key.try_number))
        if try_key in self._reported or try_key not in self.ended:
            return  # failed without its pod ever ending (deleted while Pending...): no latency
        self._reported.add(try_key)
        self.samples.append(self.now() - self.ended[try_key])


def api_over_time(calls: list, run_end: float, bins: int = SERIES_BINS) -> dict:
    """Calls per status in equal bins over the run: {"bin_seconds": w, "series": {status: [n...]}}."""
    width = max(run_end, 1e-9) / bins
    series: dict[str, list[int]] = {}
    for call in calls:
        counts = series.setdefault(str(call.status), [0] * bins)
        counts[min(bins - 1, int(call.time / width))] += 1
    ordered = dict(sorted(series.items(), key=lambda kv: (not kv[0].isdigit(), kv[0])))
    return {"bin_seconds": width, "series": ordered}


def calls_by_verb(api_calls: list[tuple[str, str, int]]) -> dict[str, Counter]:
    """{verb: Counter(status -> n)} from the runner's (verb, status, n) rows."""
    table: dict[str, Counter] = {}
    for verb, status, n in api_calls:
        table.setdefault(verb, Counter())[status] += n
    return table
