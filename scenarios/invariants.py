"""What must hold in every run, whatever the scenario file says.

* no task lost: every task ends terminal (reset tries are re-run, so they end terminal too);
* never two live pods for one task try;
* no orphan pods at the end: every pod left is terminal and labelled done (kept on purpose);
* each terminal pod reported to the scheduler once (per task try);
* executor slots never leaked: no scheduler's executor still holds a running key at the end.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from executor import State

TERMINAL_PHASES = ("Succeeded", "Failed")
DONE_LABEL = "airflow_executor_done"


@dataclass
class Violation:
    invariant: str
    message: str
    time: float | None = None


@dataclass
class Watchdog:
    """Watches the run as it happens (pods per try, reports per try)."""

    live: dict = field(default_factory=lambda: defaultdict(set))
    reports: Counter = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    now: callable = lambda: 0.0

    def on_pod_change(self, change) -> None:
        pod = change.obj
        key = try_key(pod)
        if key is None:
            return
        name = pod["metadata"]["name"]
        alive = change.type != "DELETED" and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
        if alive:
            pods = self.live[key]
            pods.add(name)
            if len(pods) > 1:
                self.violations.append(Violation(
                    "one live pod per try", f"task try {key} has {len(pods)} live pods: {sorted(pods)}", self.now()))
        elif (pods := self.live.get(key)) is not None:
            pods.discard(name)
            if not pods:  # only tries with a live pod are kept: 100,000 ended tries cost nothing
                del self.live[key]

    def on_state(self, key, state, info) -> None:
        if state in (State.SUCCESS, State.FAILED, None):
            self.reports[key] += 1
            if self.reports[key] == 2:
                self.violations.append(Violation(
                    "reported once", f"task try {key} reported terminal twice (last: {state}, {info})", self.now()))


def try_key(pod: dict):
    annotations = pod["metadata"].get("annotations") or {}
    if "dag_id" not in annotations:
        return None
    return (annotations["dag_id"], annotations["task_id"], annotations.get("run_id"),
            annotations.get("map_index", "-1"), annotations.get("try_number"))


def final_checks(world, watchdog: Watchdog) -> list[Violation]:
    found = list(watchdog.violations)
    unfinished = [ti for ti in world.store.tis.values() if ti.state not in (State.SUCCESS, State.FAILED)]
    if unfinished:
        sample = ", ".join(f"{ti.dag_id}.{ti.task_id}={ti.state}" for ti in unfinished[:5])
        found.append(Violation("no task lost", f"{len(unfinished)} task(s) never finished: {sample}"))
    orphans = [p["metadata"]["name"] for p in world.cluster.pods()
               if (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
               or (p["metadata"].get("labels") or {}).get(DONE_LABEL) != "True"]
    if orphans:
        found.append(Violation("no orphan pods", f"{len(orphans)} pod(s) left behind: {orphans[:5]}"))
    for job in world.jobs:
        if job.running and job.executor.running:
            found.append(Violation("slots never leaked", f"scheduler {job.job_id} still holds "
                                   f"{len(job.executor.running)} running key(s): {sorted(job.executor.running)[:3]}"))
    return found
