"""The executor's host, playing Airflow's part: the task-instance store (``scheduler_job``
holds the scheduler loop).

``TaskStore`` is the metadata database's role (state, try_number, queued_by_job_id, scheduler
jobs and their heartbeats, the row locks orphan handling takes). A task's pod reports its own
progress through ``TaskStore.report_from_pod``, as an Airflow task process writes its own state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .keys import State, TaskInstanceKey
from .runtime import Runtime

log = logging.getLogger(__name__)

TERMINAL = (State.SUCCESS, State.FAILED, State.UPSTREAM_FAILED)
UNFINISHED = (State.SCHEDULED, State.QUEUED, State.RUNNING, State.UP_FOR_RETRY)


@dataclass(slots=True)  # 100,000 of them in a big backfill
class TaskInstance:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    retries: int = 0
    priority: int = 1
    executor_config: Any = None
    state: str | None = State.SCHEDULED
    try_number: int = 0                 # the try in flight (or last run); 0: never queued
    queued_by_job_id: str | None = None
    queued_at: float | None = None      # when the try in flight was queued
    stuck_requeues: int = 0             # times it was re-queued after task_queued_timeout
    history: list[tuple[float, str | None, int]] = field(default_factory=list)
    # the identity without the try, made once: the store's indexes share this one tuple
    primary: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.primary = (self.dag_id, self.task_id, self.run_id, self.map_index)

    @property
    def key(self) -> TaskInstanceKey:
        return TaskInstanceKey(self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index)

    def command(self) -> list[str]:
        command = ["airflow", "tasks", "run", self.dag_id, self.task_id, self.run_id, "--local"]
        return command + (["--map-index", str(self.map_index)] if self.map_index >= 0 else [])


@dataclass
class JobRecord:
    job_id: str
    state: str = State.RUNNING
    latest_heartbeat: float = 0.0


class TaskStore:
    """Task instances and scheduler jobs: what the executor and scheduler read and write."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.tis: dict[tuple, TaskInstance] = {}
        self.jobs: dict[str, JobRecord] = {}
        # Task instances by state (insertion-ordered), so the scheduler's per-loop questions
        # cost what they return, not the whole store. Change states through set_state only.
        self._by_state: dict[str | None, dict[tuple, TaskInstance]] = {}
        # Scheduled task instances by priority, so the scheduler picks the next few in what
        # they number, not in what is scheduled (100,000 tasks may wait at once).
        self._scheduled: dict[int, dict[tuple, TaskInstance]] = {}
        # Row locks (Airflow's SELECT ... FOR UPDATE SKIP LOCKED): a scheduler handling orphans
        # holds them so that no other scheduler adopts or resets the same task meanwhile.
        self.locks: dict[tuple, str] = {}

    def add(self, ti: TaskInstance) -> TaskInstance:
        self.tis[ti.primary] = ti
        self._enter(ti)
        self._log(ti)
        return ti

    def get(self, key: TaskInstanceKey) -> TaskInstance | None:
        return self.tis.get(key.primary)

    def set_state(self, ti: TaskInstance, state: str | None) -> None:
        if ti.state != state:
            self._leave(ti)
            ti.state = state
            if state == State.QUEUED:
                ti.queued_at = self.runtime.now()
            self._enter(ti)
            self._log(ti)

    def _enter(self, ti: TaskInstance) -> None:
        self._by_state.setdefault(ti.state, {})[ti.primary] = ti
        if ti.state == State.SCHEDULED:
            self._scheduled.setdefault(ti.priority, {})[ti.primary] = ti

    def _leave(self, ti: TaskInstance) -> None:
        self._by_state.get(ti.state, {}).pop(ti.primary, None)
        if ti.state == State.SCHEDULED:
            bucket = self._scheduled.get(ti.priority, {})
            bucket.pop(ti.primary, None)
            if not bucket:
                self._scheduled.pop(ti.priority, None)

    def next_scheduled(self, count: int) -> list[TaskInstance]:
        """Up to ``count`` scheduled task instances: highest priority first, then the longest
        scheduled."""
        chosen: list[TaskInstance] = []
        for priority in sorted(self._scheduled, reverse=True):
            for ti in self._scheduled[priority].values():
                if len(chosen) >= count:
                    return chosen
                chosen.append(ti)
        return chosen

    def _log(self, ti: TaskInstance) -> None:
        ti.history.append((self.runtime.now(), ti.state, ti.try_number))

    def in_state(self, *states) -> list[TaskInstance]:
        return [ti for state in states for ti in self._by_state.get(state, {}).values()]

    def queued_by(self, job_id: str) -> list[TaskInstance]:
        return [ti for ti in self.in_state(State.QUEUED) if ti.queued_by_job_id == str(job_id)]

    def reset_to_scheduled(self, key: TaskInstanceKey) -> None:
        """Give back a try that never ran: it does not count against the retries."""
        ti = self.get(key)
        if ti is not None and ti.try_number == key.try_number and ti.state == State.QUEUED:
            ti.try_number -= 1
            ti.queued_by_job_id = None
            self.set_state(ti, State.SCHEDULED)

    def reset_orphan(self, ti: TaskInstance, owner: str | None, try_number: int) -> bool:
        """Reset a dead scheduler's try, if it is still what it was when the orphan was found
        (as Airflow re-reads the row in the transaction that resets it): a try that finished or
        was taken over meanwhile is left alone. A try that never ran is given back."""
        if ti.state not in (State.QUEUED, State.RUNNING) or ti.try_number != try_number \
                or ti.queued_by_job_id != owner:
            return False
        if ti.state == State.QUEUED:
            ti.try_number -= 1
        ti.queued_by_job_id = None
        self.set_state(ti, State.SCHEDULED)
        return True

    def lock(self, tis: list[TaskInstance], job_id: str) -> list[TaskInstance]:
        """Lock the rows no other scheduler holds; returns those this scheduler got."""
        got = [ti for ti in tis if self.locks.get(ti.primary, job_id) == job_id]
        for ti in got:
            self.locks[ti.primary] = job_id
        return got

    def unlock(self, job_id: str) -> None:
        """Release every row lock ``job_id`` holds (its transaction ended, or its process died)."""
        self.locks = {primary: holder for primary, holder in self.locks.items() if holder != job_id}

    def counts(self) -> dict[str, int]:
        """Task instances per state (only states some hold), from the index: costs the states,
        not the tasks, so a progress line every few virtual seconds stays cheap at 100,000."""
        return {str(state): len(tis) for state, tis in self._by_state.items() if tis}

    def all_done(self) -> bool:
        terminal = sum(len(self._by_state.get(state, ())) for state in TERMINAL)
        return terminal == len(self.tis)

    # -- what task processes write -------------------------------------------------------------

    def report_from_pod(self, pod: dict) -> None:
        """A task's pod reports its progress, as the task process would: RUNNING when it starts,
        SUCCESS or a failure (retry or FAILED) when its container exits by itself."""
        annotations = pod["metadata"].get("annotations") or {}
        if "dag_id" not in annotations:
            return
        ti = self.tis.get((annotations["dag_id"], annotations["task_id"], annotations.get("run_id", ""),
                           int(annotations.get("map_index", -1))))
        if ti is None or str(ti.try_number) != annotations.get("try_number") or ti.state in TERMINAL:
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Running" and ti.state == State.QUEUED:
            self.set_state(ti, State.RUNNING)
        elif phase in ("Succeeded", "Failed") and ti.state in (State.QUEUED, State.RUNNING):
            exited_by_itself = phase == "Succeeded" or _exit_code(pod) not in (None, 137, 143)
            if phase == "Succeeded":
                self.set_state(ti, State.SUCCESS)
            elif exited_by_itself:
                self.handle_failure(ti)

    def handle_failure(self, ti: TaskInstance) -> None:
        self.set_state(ti, State.UP_FOR_RETRY if ti.try_number <= ti.retries else State.FAILED)

    # -- scheduler jobs ------------------------------------------------------------------------

    def live_scheduler_ids(self, threshold: float) -> list[str]:
        now = self.runtime.now()
        return [j.job_id for j in self.jobs.values()
                if j.state == State.RUNNING and now - j.latest_heartbeat <= threshold]


def _exit_code(pod: dict) -> int | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = (status.get("state") or {}).get("terminated")
        if ended:
            return ended.get("exitCode")
    return None
