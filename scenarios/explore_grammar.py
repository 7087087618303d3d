"""The fault grammar of ``kubesim explore``: hypothesis strategies that draw a whole fault
schedule for a world, swarm style.

Each draw first turns on a random subset of the fault kinds (so rare combinations get room:
a run with only lost answers and a scheduler crash is as likely as any other pair), then draws
a few faults of the kinds turned on, each with its own times and parameters, and a world size
and seed. What comes out is an overlay on the scenario file's own keys, in the file's own
vocabulary, so a failing draw is written back as a scenario that ``kubesim run`` replays.

Every value shrinks toward the simple end (fewer faults, earlier and shorter windows, fewer
tasks and nodes), which is what makes hypothesis's shrinking find minimal schedules.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

VERBS = ("create", "delete", "patch", "list", "watch", "get")
WRITE_VERBS = ("create", "delete", "patch")

# kind -> what it means (kubesim explore --list-kinds); each has a drawer below
KINDS = {
    "api_errors": "API errors by verb and status, with a probability, in a window",
    "latency": "API latency by verb (lognormal)",
    "outage": "an API outage window (503s or refused connections)",
    "expire_watches": "410 storms: every open watch expires (repeating)",
    "compact": "watch-cache compaction",
    "stall_watches": "stalled watch streams (clients hit their read timeout)",
    "drop_watches": "dropped watch connections",
    "connection_resets": "dropped connections before an answer",
    "lost_answers": "answers lost after the server acted (create, delete, patch)",
    "lose_node": "a node goes NotReady (and maybe comes back)",
    "evict": "running pods evicted",
    "stuck_pending": "pods that never schedule or cannot pull their image",
    "crash_scheduler": "the scheduler crashes; a successor starts later (or never)",
    "stop_scheduler": "a graceful scheduler stop, with a successor later",
    "stall_scheduler": "the scheduler's loop stalls past its health threshold",
    "churn": "other tenants' pods come and go",
    "two_schedulers": "a second scheduler runs beside the first (HA)",
}


def schedule(kinds: tuple[str, ...], horizon: float, max_tasks: int, max_nodes: int,
             max_faults: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """An overlay for the scenario: ``{"faults": [...], "workload": {...}, "cluster": {...}, "seed": n}``."""
    return st.builds(
        _overlay,
        enabled=st.lists(st.sampled_from(kinds), min_size=1, max_size=len(kinds), unique=True),
        data=st.data(), horizon=st.just(horizon), max_tasks=st.just(max_tasks), max_nodes=st.just(max_nodes),
        max_faults=st.just(max_faults))


def _overlay(enabled, data, horizon, max_tasks, max_nodes, max_faults) -> dict[str, Any]:
    draw = data.draw
    overlay: dict[str, Any] = {
        "seed": draw(st.integers(0, 2**16), label="seed"),
        "workload": {"tasks_per_dag": draw(st.integers(1, max_tasks), label="tasks"), "dags": 1},
        "cluster": {"nodes": draw(st.integers(1, max_nodes), label="nodes")},
        "faults": [],
    }
    count = draw(st.integers(1, max_faults), label="faults")
    for _ in range(count):
        kind = draw(st.sampled_from(sorted(enabled)), label="kind")
        DRAWERS[kind](draw, overlay, horizon)
    return overlay


def _at(draw, horizon: float) -> float:
    return float(draw(st.integers(0, int(horizon)), label="at"))


def _window(draw, horizon: float) -> tuple[float, float]:
    start = _at(draw, horizon)
    return start, start + float(draw(st.integers(1, 120), label="length"))


def _api_errors(draw, overlay, horizon):
    code = draw(st.sampled_from([500, 503, 429, 409, 504, 403]), label="code")
    start, end = _window(draw, horizon)
    rule: dict[str, Any] = {"code": code, "verbs": sorted(draw(st.sets(st.sampled_from(VERBS), min_size=1))),
                            "probability": draw(st.sampled_from([1.0, 0.5, 0.2, 0.05])), "start": start, "end": end,
                            "retry_after": draw(st.integers(0, 5))}
    if code == 409 and draw(st.booleans(), label="conflict"):
        rule["reason"] = "Conflict"
    overlay["faults"].append({"api_errors": rule})


def _latency(draw, overlay, horizon):
    verb = draw(st.sampled_from(("*",) + VERBS), label="verb")
    median = draw(st.sampled_from([0.01, 0.1, 0.5, 2.0, 6.0]), label="median")
    overlay["cluster"].setdefault("api_latency", {})[verb] = {
        "lognormal": {"median": median, "p99": median * draw(st.sampled_from([1, 3, 10]))}}


def _outage(draw, overlay, horizon):
    start, end = _window(draw, horizon)
    overlay["faults"].append({"outage": {"start": start, "end": end,
                                         "mode": draw(st.sampled_from(["unavailable", "refused"]))}})


def _expire_watches(draw, overlay, horizon):
    fault: dict[str, Any] = {"at": _at(draw, horizon), "expire_watches": {}}
    if draw(st.booleans(), label="repeat"):
        fault["every"] = float(draw(st.integers(5, 60)))
        fault["until"] = fault["at"] + float(draw(st.integers(10, 300)))
    overlay["faults"].append(fault)


def _compact(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "compact": {"keep": draw(st.integers(0, 50))}})


def _stall_watches(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "stall_watches": {"seconds": float(draw(st.integers(5, 120)))}})


def _drop_watches(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "drop_watches": {}})


def _connection_resets(draw, overlay, horizon):
    overlay["faults"].append({"connection_resets": draw(st.sampled_from([0.01, 0.05, 0.2]))})


def _lost_answers(draw, overlay, horizon):
    start, end = _window(draw, horizon)
    overlay["faults"].append({"lost_answers": {
        "verbs": sorted(draw(st.sets(st.sampled_from(WRITE_VERBS), min_size=1))),
        "probability": draw(st.sampled_from([1.0, 0.5, 0.2])), "start": start, "end": end}})


def _lose_node(draw, overlay, horizon):
    # The node always comes back: a task on a node lost for good hangs until Airflow's zombie
    # detection, which the host does not model (a known limit; see the README).
    nodes = overlay["cluster"]["nodes"]
    spec = {"node": f"node-{draw(st.integers(1, nodes))}", "restore_after": float(draw(st.integers(10, 600)))}
    overlay["faults"].append({"at": _at(draw, horizon), "lose_node": spec})


def _evict(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "evict": {"count": draw(st.integers(1, 5))}})


def _stuck_pending(draw, overlay, horizon):
    workload = overlay["workload"]
    workload["unschedulable_probability"] = draw(st.sampled_from([0.0, 0.1, 0.3]))
    workload["image_error_probability"] = draw(st.sampled_from([0.0, 0.1, 0.3]))


def _crash_scheduler(draw, overlay, horizon):
    # Always with a successor: with every scheduler gone, nothing is left to finish the work.
    overlay["faults"].append({"at": _at(draw, horizon), "crash_scheduler": {
        "scheduler": draw(st.sampled_from(["newest", "oldest"])), "restart_after": float(draw(st.integers(0, 120)))}})


def _stop_scheduler(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "stop_scheduler": {
        "scheduler": draw(st.sampled_from(["newest", "oldest"])), "restart_after": float(draw(st.integers(0, 120)))}})


def _stall_scheduler(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "stall_scheduler": {
        "scheduler": draw(st.sampled_from(["newest", "oldest"])), "seconds": float(draw(st.integers(5, 180)))}})


def _churn(draw, overlay, horizon):
    overlay["faults"].append({"churn": {"pods_per_second": draw(st.sampled_from([0.2, 1.0, 5.0])),
                                        "run_seconds": float(draw(st.integers(1, 30)))}})


def _two_schedulers(draw, overlay, horizon):
    overlay["faults"].append({"at": _at(draw, horizon), "start_scheduler": {}})


DRAWERS = {name: globals()[f"_{name}"] for name in KINDS}
