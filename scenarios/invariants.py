"""What must hold in every run, whatever the scenario file says: the harness's promise.

* no task lost: every task ends terminal (reset tries are re-run, so they end terminal too);
* one running copy per task instance: never two pods of one dag/task/run/map index Running at
  once, whichever tries they belong to;
* one live pod per try: never two unfinished pods for one task try;
* succeeded is final: a task that succeeded is never scheduled or queued again;
* reported once: each task try is reported terminal to the scheduler at most once;
* one clean-up per pod: once the executor was told a pod is deleted (or labelled done), it sends
  that pod no further DELETE or done-label PATCH, whatever the answer to it would be (a retry after
  an error answer is fine: the first clean-up may not have happened);
* no orphan pods: every task pod left at the end is terminal and labelled done (kept on purpose);
* slots never leaked: an executor whose scheduler finished (or is still running) holds no running
  key at the end. A crashed scheduler's executor is not judged (its memory died with it), nor a
  stopped one's (its running pods are left for another scheduler to adopt).

Each violation names the task, the pods, when, and the pod changes and API calls that led there.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from executor import State

# Every invariant by the name its violations carry: what it means, and whether it is judged
# only at the end of a run (a run cut off by until.max_virtual_seconds cannot judge those).
INVARIANTS = {
    "no task lost": ("every task ends success or failed", True),
    "one running copy per task instance": ("never two pods of one task instance Running at once, across tries", False),
    "one live pod per try": ("never two live pods for one task try", False),
    "succeeded is final": ("a task that succeeded is never scheduled or queued again", True),
    "reported once": ("each terminal pod reported to the scheduler once per try", False),
    "one clean-up per pod": ("no DELETE or done-label PATCH after one was answered", False),
    "no orphan pods": ("every task pod left at the end is terminal and labelled done", True),
    "slots never leaked": ("no finished scheduler's executor still holds a running key at the end", True),
}

TERMINAL_PHASES = ("Succeeded", "Failed")
DONE_LABEL = "airflow_executor_done"
DETAILED = 5   # violations per invariant whose history is written out (the rest: message only)
HISTORY = 12   # lines of history per violation


@dataclass
class Violation:
    invariant: str
    message: str
    time: float | None = None
    pods: tuple[str, ...] = ()
    details: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "\n".join([self.message, *(f"    {line}" for line in self.details)])


@dataclass
class Watchdog:
    """Watches the run as it happens: pods per task, reports per try, clean-up calls per pod."""

    now: Callable[[], float] = lambda: 0.0
    live: dict = field(default_factory=dict)      # try key -> its unfinished pod (a set if several)
    running: dict = field(default_factory=dict)   # task key -> its Running pod (a set if several)
    reports: Counter = field(default_factory=Counter)
    cleaned: dict = field(default_factory=dict)                        # pod -> time of its clean-up
    violations: list[Violation] = field(default_factory=list)

    def attach(self, world) -> "Watchdog":
        """Watch ``world``: its pods, every executor it starts from now on, its API calls."""
        self.now = lambda: world.cluster.now
        world.cluster.server.pods.listeners.append(self.on_pod_change)
        world.cluster.gateway.listeners.append(self.on_call)
        previous = world.on_executor

        def hook(executor):
            executor.state_listeners.append(self.on_state)
            if previous is not None:
                previous(executor)
        world.on_executor = hook
        return self

    def flag(self, invariant: str, message: str, pods=()) -> None:
        self.violations.append(Violation(invariant, message, self.now(), tuple(pods)))

    # -- pods ----------------------------------------------------------------------------------

    def on_pod_change(self, change) -> None:
        pod = change.obj
        key = try_key(pod)
        if key is None:
            return
        name = pod["metadata"]["name"]
        phase = (pod.get("status") or {}).get("phase")
        deleted = change.type == "DELETED"
        self._track(self.live, key, name, not deleted and phase not in TERMINAL_PHASES,
                    "one live pod per try", f"task try {describe_key(key)} has {{n}} live pods: {{pods}}")
        self._track(self.running, key[:4], name, not deleted and phase == "Running",
                    "one running copy per task instance",
                    f"task {describe_key(key[:4])} has {{n}} pods Running at once: {{pods}}")

    def _track(self, table: dict, key: tuple, name: str, member: bool, invariant: str, text: str) -> None:
        """Keep ``table[key]`` the pods of ``key`` that are members: one pod's name alone (the
        usual case, and 200 bytes less than a set at 38,000 live pods), a set when there are more."""
        pods = table.get(key)
        if not member:
            if pods == name:
                del table[key]
            elif isinstance(pods, set):
                pods.discard(name)
                if len(pods) == 1:
                    table[key] = pods.pop()
            return
        if pods is None:
            table[key] = name
        elif pods != name and not (isinstance(pods, set) and name in pods):
            pods = {pods, name} if isinstance(pods, str) else pods | {name}
            table[key] = pods
            self.flag(invariant, text.format(n=len(pods), pods=sorted(pods)), sorted(pods))

    # -- what executors report -----------------------------------------------------------------

    def on_state(self, key, state, info) -> None:
        if state in (State.SUCCESS, State.FAILED, None):
            key = compact_key(key)
            self.reports[key] += 1
            if self.reports[key] == 2:
                self.flag("reported once", f"task try {describe_key(key)} reported terminal twice "
                          f"(the second time: {state}, {info})")

    # -- API calls -----------------------------------------------------------------------------

    def on_call(self, call, request) -> None:
        if call.resource != "pods" or call.name is None or not is_clean_up(call.verb, request.body):
            return
        pod = call.name
        if pod in self.cleaned:
            self.flag("one clean-up per pod", f"pod {pod} got a second clean-up ({call.verb.upper()} answered "
                      f"{call.status}) after the one answered at t={self.cleaned[pod]:g}s", [pod])
        elif call.status == 404 or (isinstance(call.status, int) and 200 <= call.status < 300):
            self.cleaned[pod] = call.time


def compact_key(key) -> tuple:
    """A task try's key kept for the whole run (100,000 of them at scale): its ids interned, so the
    run id and each DAG id are held once, not once per try as each report's own strings were."""
    return (sys.intern(key.dag_id), sys.intern(key.task_id), sys.intern(key.run_id), key.map_index, key.try_number)


def is_clean_up(verb: str, body: bytes | None) -> bool:
    """A DELETE, or a PATCH that labels the pod done."""
    if verb == "delete":
        return True
    if verb != "patch" or not body or DONE_LABEL.encode() not in body:
        return False
    try:
        labels = (json.loads(body).get("metadata") or {}).get("labels") or {}
    except (ValueError, AttributeError):
        return False
    return labels.get(DONE_LABEL) == "True"


def try_key(pod: dict):
    annotations = pod["metadata"].get("annotations") or {}
    if "dag_id" not in annotations:
        return None
    return (annotations["dag_id"], annotations["task_id"], annotations.get("run_id"),
            str(annotations.get("map_index", "-1")), annotations.get("try_number"))


def describe_key(key: tuple) -> str:
    dag_id, task_id, run_id, map_index, *try_number = key
    text = f"{dag_id}.{task_id} ({run_id}"
    text += f", map index {map_index}" if str(map_index) not in ("-1", "") else ""
    return text + (f", try {try_number[0]})" if try_number else ")")


# -- at the end of the run -------------------------------------------------------------------------

def final_checks(world, watchdog: Watchdog) -> list[Violation]:
    found = list(watchdog.violations)
    found += lost_tasks(world) + requeued_after_success(world) + orphan_pods(world) + leaked_slots(world)
    explain(found, world)
    return found


def lost_tasks(world) -> list[Violation]:
    unfinished = [ti for ti in world.store.tis.values() if ti.state not in (State.SUCCESS, State.FAILED)]
    if not unfinished:
        return []
    sample = ", ".join(f"{ti.dag_id}.{ti.task_id}={ti.state}" for ti in unfinished[:5])
    return [Violation("no task lost", f"{len(unfinished)} task(s) never finished: {sample}")]


def requeued_after_success(world) -> list[Violation]:
    found = []
    for ti in world.store.tis.values():
        succeeded = None
        for when, state, try_number in ti.history:
            if state == State.SUCCESS and succeeded is None:
                succeeded = when
            elif succeeded is not None and state in (State.SCHEDULED, State.QUEUED):
                found.append(Violation(
                    "succeeded is final", f"task {describe_key(ti.primary)} succeeded at t={succeeded:g}s and "
                    f"was {state} again at t={when:g}s (try {try_number}); its states: "
                    f"{[(round(t, 1), s, n) for t, s, n in ti.history]}", when))
                break
    return found


def orphan_pods(world) -> list[Violation]:
    orphans = [p["metadata"]["name"] for p in world.cluster.pods() if try_key(p) is not None
               and ((p.get("status") or {}).get("phase") not in TERMINAL_PHASES
                    or (p["metadata"].get("labels") or {}).get(DONE_LABEL) != "True")]
    if not orphans:
        return []
    return [Violation("no orphan pods", f"{len(orphans)} pod(s) left behind: {orphans[:5]}", None, tuple(orphans[:5]))]


def leaked_slots(world) -> list[Violation]:
    found = []
    for job in world.jobs:
        if job.ended in ("crashed", "stopped") or not job.executor.running:
            continue   # a crashed one's memory is gone; a stopped one leaves its pods to adoption
        held = sorted(job.executor.running)
        how = "still running" if job.ended is None else f"ended ({job.ended})"
        found.append(Violation("slots never leaked", f"scheduler {job.job_id} {how} with {len(held)} running "
                               f"key(s) held: {[describe_key(k.primary + (k.try_number,)) for k in held[:3]]}"))
    return found


def explain(violations: list[Violation], world) -> None:
    """Write out the pod changes and API calls that led to the first few of each invariant."""
    shown: Counter = Counter()
    for violation in violations:
        if not violation.pods or shown[violation.invariant] >= DETAILED:
            continue
        shown[violation.invariant] += 1
        violation.details = pod_history(world, set(violation.pods), violation.time)


def pod_history(world, pods: set[str], until: float | None) -> list[str]:
    """The last changes and API calls of ``pods`` up to ``until``, oldest first."""
    lines = []
    for when, _rv, change, kind, _namespace, name, phase in (e for e in world.cluster.trace if len(e) == 7):
        if kind == "Pod" and name in pods and (until is None or when <= until):
            lines.append((when, f"t={when:8.2f}  {name}: {change} {phase}"))
    for call in world.cluster.gateway.log:
        if call.resource == "pods" and call.name in pods and (until is None or call.time <= until):
            lines.append((call.time, f"t={call.time:8.2f}  {call.name}: {call.verb.upper()} answered {call.status}"))
    lines.sort(key=lambda line: line[0])
    return [text for _, text in lines[-HISTORY:]]
