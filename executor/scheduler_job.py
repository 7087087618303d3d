"""The scheduler loop, playing Airflow's SchedulerJob: it queues task instances, heartbeats the
executor, applies its events, retries failed tries up to their limit, fails or re-queues tries
stuck in queued, and can crash, stall or stop and be succeeded by a new job that adopts what it
can and resets the rest (with the rows it handles locked, each reset re-checked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from .base import AdoptionUnavailable
from .host import JobRecord, TaskStore
from .keys import State
from .runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_SETTLE = 3   # loops to wait after the last sweep for what it adopted to show up
MAX_TIS_PER_QUERY = 512  # Airflow's [scheduler] max_tis_per_query default: queued per loop at most


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
