"""Distributions and series of a run for the report: result latency (a pod ended -> the executor
reported it), pod start latency, and API calls over time by status."""

from __future__ import annotations

from collections import Counter



SERIES_BINS = 60  # API calls over time: this many bins over the run


def try_of_pod(pod: dict) -> tuple | None:
    annotations = pod["metadata"].get("annotations") or {}
    if "dag_id" not in annotations or "try_number" not in annotations:
        return None
    return (annotations["dag_id"], annotations["task_id"], annotations.get("run_id"),
            str(annotations.get("map_index", "-1")), str(annotations["try_number"]))


class CallRecorder:
    """What the run needs of its API calls, kept as they happen (a gateway listener) rather than
    from a log of every call: calls per status per virtual second, the calls that were not a
    success (the report's fault reactions), and calls per pod for the verbs the file bounds."""

    def __init__(self, per_pod_verbs=()):
        self.per_second: dict[str, Counter] = {}
        self.failed: list = []
        self.per_pod_verbs = frozenset(per_pod_verbs)
        self.per_pod: dict[str, Counter] = {verb: Counter() for verb in self.per_pod_verbs}

    def on_call(self, call, request) -> None:
        status = call.status
        counts = self.per_second.get(str(status))
        if counts is None:
            counts = self.per_second[str(status)] = Counter()
        counts[int(call.time)] += 1
        if not (isinstance(status, int) and status < 400):
            self.failed.append(call)
        if call.verb in self.per_pod_verbs and call.resource == "pods" and call.name:
            self.per_pod[call.verb][call.name] += 1


def api_over_time(recorder: CallRecorder, run_end: float, bins: int = SERIES_BINS) -> dict:
    """Calls per status in equal bins over the run: {"bin_seconds": w, "series": {status: [n...]}}."""
    width = max(run_end, 1e-9) / bins
    series: dict[str, list[int]] = {}
    for status, per_second in recorder.per_second.items():
        counts = series.setdefault(status, [0] * bins)
        for second, n in per_second.items():
            counts[min(bins - 1, int(second / width))] += n
    ordered = dict(sorted(series.items(), key=lambda kv: (not kv[0].isdigit(), kv[0])))
    return {"bin_seconds": width, "series": ordered}


def calls_by_verb(api_calls: list[tuple[str, str, int]]) -> dict[str, Counter]:
    """{verb: Counter(status -> n)} from the runner's (verb, status, n) rows."""
    table: dict[str, Counter] = {}
    for verb, status, n in api_calls:
        table.setdefault(verb, Counter())[status] += n
    return table
