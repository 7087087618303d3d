"""The executor's host, playing Airflow's part: a task-instance store and a scheduler loop.

``TaskStore`` is the metadata database's role (state, try_number, queued_by_job_id, scheduler
jobs and their heartbeats). ``SchedulerJob`` queues task instances, heartbeats the executor,
applies its events, retries failed tries up to their limit, and can crash and be succeeded by
a new job that adopts what it can and resets the rest. A task's pod reports its own progress
through ``TaskStore.report_from_pod``, as an Airflow task process writes its own state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .base import AdoptionUnavailable
from .keys import State, TaskInstanceKey
from .runtime import Runtime

log = logging.getLogger(__name__)

TERMINAL = (State.SUCCESS, State.FAILED, State.UPSTREAM_FAILED)
UNFINISHED = (State.SCHEDULED, State.QUEUED, State.RUNNING, State.UP_FOR_RETRY)
SWEEP_SETTLE = 3   # loops to wait after the last sweep for what it adopted to show up
MAX_TIS_PER_QUERY = 512  # Airflow's [scheduler] max_tis_per_query default: queued per loop at most


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

    @property
    def key(self) -> TaskInstanceKey:
        return TaskInstanceKey(self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index)

    @property
    def primary(self) -> tuple:
        return self.key.primary

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


class SchedulerJob:
    """One scheduler process: its loop, its executor, its job id.

    ``ended`` says how it ended: "finished" (every task done and the executor drained),
    "drain_timeout" (done, but the executor still held work after ``drain_timeout``), "stopped"
    (a graceful stop from outside) or "crashed"; None while it runs.
    """

    def __init__(self, store: TaskStore, runtime: Runtime, job_id: str,
                 make_executor: Callable[[str], Any], loop_interval: float = 1.0,
                 health_check_threshold: float = 30.0, drain_timeout: float = 120.0,
                 orphan_check_interval: float = 300.0, queued_timeout: QueuedTimeout | None = None,
                 max_tis_per_query: int = MAX_TIS_PER_QUERY):
        self.store, self.runtime, self.job_id = store, runtime, str(job_id)
        self.executor = make_executor(self.job_id)
        self.loop_interval = loop_interval
        self.health_check_threshold = health_check_threshold
        self.drain_timeout = drain_timeout  # how long to wait, once all is done, for the executor
        self._done_since: float | None = None
        self._pending_then = 0
        self._swept_at: float | None = None
        self.orphan_check_interval = orphan_check_interval  # [scheduler] orphaned_tasks_check_interval
        self._next_orphan_check = 0.0
        self.queued_timeout = queued_timeout or QueuedTimeout()
        self._next_queued_check = 0.0
        self.stalled_until = 0.0
        self.stop_requested = False
        if max_tis_per_query < 0:
            raise ValueError(f"max_tis_per_query must be 0 (no cap but the executor's slots) or more, "
                             f"got {max_tis_per_query}")
        self.max_tis_per_query = max_tis_per_query  # [scheduler] max_tis_per_query
        self.loops = 0
        self.running = False
        self.ended: str | None = None
        self.shutdown_seconds = 0.0   # how long the last clean shutdown took
        self.stale_events = 0
        self.handle = None

    def start(self) -> None:
        """Run the loop in the background until every task is done or the job stops."""
        self.running = True
        self._register()   # the job exists from now on: it may crash before its loop first runs
        self.handle = self.runtime.spawn(self.run, name=f"scheduler-{self.job_id}")

    def _register(self) -> None:
        self.store.jobs.setdefault(self.job_id, JobRecord(self.job_id, State.RUNNING, self.runtime.now()))

    def run(self) -> None:
        self._register()
        self.running = True
        self.executor.start()
        self._next_queued_check = self.runtime.now() + self.queued_timeout.check_interval
        self.adopt_or_reset_orphans()
        while self.running:  # at least one loop: a scheduler heartbeats and syncs before it can be done
            self._wait_out_stall()
            if self.stop_requested:
                break
            self.loop_once()
            self.runtime.sleep(self.loop_interval)
            if self._finished():
                break
        if self.running:
            self.stop("stopped" if self.stop_requested else self.ended or "finished")

    def _finished(self) -> bool:
        """Every task is terminal, the executor has cleaned up after its tries, and a last sweep
        for pods that ended schedulers left behind found nothing more to do; or the executor has
        made no progress for ``drain_timeout`` since the tasks were all done. (A real scheduler
        never stops, and its periodic orphan checks would find those pods in time; this one
        stops when the work is done, so it sweeps once before it does.)"""
        if not self.store.all_done():
            self._done_since, self._swept_at = None, None
            return False
        pending = self.executor.pending_work()
        if not pending:
            if self._swept_at is None:
                self._swept_at = self.runtime.now()
                try:
                    self.executor.try_adopt_task_instances([])
                except AdoptionUnavailable:
                    self._swept_at = None   # sweep again next loop
                return False
            return self.runtime.now() - self._swept_at >= SWEEP_SETTLE * self.loop_interval
        if self._done_since is None or pending < self._pending_then:
            self._done_since, self._pending_then = self.runtime.now(), pending
        if self.runtime.now() - self._done_since >= self.drain_timeout:
            self.ended = "drain_timeout"
            return True
        return False

    def loop_once(self) -> None:
        self.loops += 1
        self.store.jobs[self.job_id].latest_heartbeat = self.runtime.now()
        self._queue_scheduled()
        self.executor.heartbeat()
        self._process_events()
        if self.runtime.now() >= self._next_queued_check:
            self._next_queued_check = self.runtime.now() + self.queued_timeout.check_interval
            self.handle_stuck_in_queued()
        if self.runtime.now() >= self._next_orphan_check:  # a scheduler may have died meanwhile
            self.adopt_or_reset_orphans()

    def stall(self, seconds: float) -> None:
        """The loop stops for ``seconds`` (a long GC pause, a call blocked): no heartbeat, no
        scheduling; the executor's watchers go on in the background."""
        self.stalled_until = max(self.stalled_until, self.runtime.now() + seconds)

    def _wait_out_stall(self) -> None:
        while self.runtime.now() < self.stalled_until:
            self.runtime.sleep(self.stalled_until - self.runtime.now())

    def request_stop(self) -> None:
        """Ask the loop to stop cleanly after its current iteration (as SIGTERM does)."""
        self.stop_requested = True

    def stop(self, how: str = "stopped") -> None:
        """A clean shutdown: the executor flushes everything it holds."""
        self.running = False
        self.ended = how
        began = self.runtime.now()
        self.executor.end()
        self._process_events()
        self.shutdown_seconds = self.runtime.now() - began
        self.store.unlock(self.job_id)
        self.store.jobs[self.job_id].state = State.SUCCESS

    def crash(self) -> None:
        """The scheduler process dies: no flush, its in-memory queues are lost, its locks freed."""
        self.running = False
        self.ended = "crashed"
        if self.handle is not None:
            self.handle.kill()
        self.executor.terminate()
        self.store.unlock(self.job_id)
        self.store.jobs[self.job_id].state = State.FAILED

    # -- scheduling ----------------------------------------------------------------------------

    def _queue_scheduled(self) -> None:
        for ti in self.store.in_state(State.UP_FOR_RETRY):
            self.store.set_state(ti, State.SCHEDULED)
        for ti in self.store.next_scheduled(self.queue_limit()):
            ti.try_number += 1
            ti.queued_by_job_id = self.job_id
            self.store.set_state(ti, State.QUEUED)
            self.executor.queue_command(ti.key, ti.command(), ti.priority, None, ti.executor_config)

    def queue_limit(self) -> int:
        """How many task instances one loop may queue: what the executor has room for, and at
        most ``max_tis_per_query`` (0: no cap), as Airflow's scheduler does. With unlimited
        parallelism the cap is what keeps the executor's queue, and what each queued try holds,
        from growing with the whole backlog."""
        room = self.executor.slots_available
        return room if self.max_tis_per_query == 0 else min(room, self.max_tis_per_query)

    def _process_events(self) -> None:
        for key, (state, info) in self.executor.get_event_buffer().items():
            ti = self.store.get(key)
            if ti is None or ti.try_number != key.try_number:
                self.stale_events += 1
                continue
            if state == State.SCHEDULED:  # handed back unlaunched at shutdown
                self.store.reset_to_scheduled(key)
            elif state in (State.SUCCESS, State.FAILED, None) and ti.state in (State.QUEUED, State.RUNNING):
                if state == State.SUCCESS:
                    self.store.set_state(ti, State.SUCCESS)
                else:
                    # The try ended but the task never said how: it was killed externally.
                    log.warning("executor reports %s finished (%s: %s) although the task says it is %s",
                                key, state, info, ti.state)
                    self.store.handle_failure(ti)

    def handle_stuck_in_queued(self) -> None:
        """Tries QUEUED by this scheduler for over ``task_queued_timeout``: revoke them in the
        executor (its pod is deleted), then queue them again, up to
        ``num_stuck_in_queued_retries`` times, before failing the task (Airflow 2.10+)."""
        deadline = self.runtime.now() - self.queued_timeout.timeout
        for ti in self.store.queued_by(self.job_id):
            if ti.queued_at is None or ti.queued_at > deadline:
                continue
            log.warning("task %s stuck in queued for over %ss: revoking it", ti.key, self.queued_timeout.timeout)
            self.executor.revoke_task(ti.key)
            if ti.stuck_requeues < self.queued_timeout.requeues:
                # A new try, not the same one again: the revoked pod may outlive the revoke (a
                # node that cannot confirm the delete), and one try never has two pods.
                ti.stuck_requeues += 1
                ti.queued_by_job_id = None
                self.store.set_state(ti, State.SCHEDULED)
            else:
                ti.queued_by_job_id = None
                self.store.set_state(ti, State.FAILED)

    # -- adoption ------------------------------------------------------------------------------

    def adopt_or_reset_orphans(self) -> None:
        """Adopt the unfinished tries of dead schedulers; reset those that cannot be adopted.

        The orphans' rows stay locked while the executor adopts (other schedulers skip them),
        and each reset re-checks its row, so a try that ended meanwhile is not run again."""
        self._next_orphan_check = self.runtime.now() + self.orphan_check_interval
        live = set(self.store.live_scheduler_ids(self.health_check_threshold)) - {self.job_id}
        orphans = [ti for ti in self.store.in_state(State.QUEUED, State.RUNNING)
                   if ti.queued_by_job_id and ti.queued_by_job_id not in live and ti.queued_by_job_id != self.job_id]
        orphans = self.store.lock(orphans, self.job_id)
        if not orphans:
            return
        found = [(ti, ti.queued_by_job_id, ti.try_number) for ti in orphans]
        try:
            try:
                not_adopted = {id(ti) for ti in self.executor.try_adopt_task_instances(orphans)}
            except AdoptionUnavailable as exc:   # nothing adopted, nothing reset: ask again soon
                log.warning("adoption postponed: %s", exc)
                self._next_orphan_check = self.runtime.now() + self.health_check_threshold
                return
            reset = 0
            for ti, owner, try_number in found:
                if id(ti) in not_adopted:
                    if self.store.reset_orphan(ti, owner, try_number):
                        reset += 1
                        log.info("reset orphaned task %s", ti.key)
                elif ti.queued_by_job_id == owner and ti.try_number == try_number:
                    ti.queued_by_job_id = self.job_id
            log.info("scheduler %s adopted %d of %d orphaned tries of dead schedulers, reset %d",
                     self.job_id, len(orphans) - len(not_adopted), len(orphans), reset)
        finally:
            self.store.unlock(self.job_id)


@dataclass(frozen=True)
class QueuedTimeout:
    """[scheduler] task_queued_timeout, its check interval, and num_stuck_in_queued_retries."""

    timeout: float = 600.0
    check_interval: float = 120.0
    requeues: int = 2
