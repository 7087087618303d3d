"""Upstream's KubernetesExecutor behind the interface kubesim's scheduler loop drives.

``SchedulerJob`` (executor/host.py) queues tries, heartbeats, reads the event buffer, adopts and
revokes; this adapter turns each call into what Airflow's scheduler does with upstream's executor:
the task store is mirrored into the metadata database first, a queued try becomes an
``ExecuteTask`` workload made from its row, adoption and revocation are handed the rows, and the
events come back under kubesim's keys. It also counts what the report measures (watcher deaths,
410s, replayed terminal events, adoptions) by observing, never by changing, what upstream does.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter

from executor import State, TaskInstanceKey

from .metadb import MetadataMirror
from .simulation import Simulation

log = logging.getLogger(__name__)

TERMINAL_RESULTS = (None, State.SUCCESS, State.FAILED, "completed")


class UpstreamExecutor:
    """One scheduler's upstream executor, in a simulated world."""

    def __init__(self, simulation: Simulation | None, mirror: MetadataMirror, job_id: str):
        from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
        self.simulation, self.mirror, self.job_id = simulation, mirror, str(job_id)
        with self._acting():
            self.inner = KubernetesExecutor()
        self.inner.job_id = int(job_id)
        self.state_listeners: list = []
        self.stats: Counter = Counter()
        self.watchers_started: list = []   # kubesim's watcher statistics: upstream's are counted in stats
        self.watchers: list = []
        self.launched: dict[TaskInstanceKey, tuple[str, str]] = {}   # try -> (pod, namespace) last heard of
        self.pod_names: dict[TaskInstanceKey, str] = {}
        self._terminal_events: dict[tuple[str, str], set] = {}   # pod -> resourceVersions of its terminal results
        change_state = self.inner._change_state

        def observed_change_state(results, *args, **kwargs):   # observe, then do exactly what upstream does
            self._observe(results)
            return change_state(results, *args, **kwargs)
        self.inner._change_state = observed_change_state

    def _acting(self):
        """Upstream code run now is this executor's (in simulation; out of process it runs as is)."""
        return self.simulation.acting_for(self) if self.simulation is not None else contextlib.nullcontext()

    # -- what upstream's processes report to the adapter ---------------------------------------

    def watcher_started(self, watcher) -> None:
        self.watchers.append(watcher)

    def watcher_died(self, watcher, exc: BaseException) -> None:
        self.stats["watcher_deaths"] += 1
        if getattr(exc, "status", None) == 410:
            self.stats["watch_expired"] += 1

    def _observe(self, results) -> None:
        key = TaskInstanceKey(*results.key)
        self.launched[key] = (results.pod_name, results.namespace)
        self.pod_names[key] = results.pod_name
        if results.state in TERMINAL_RESULTS:   # a replay: another event about a pod already reported ended
            pod = (results.namespace, results.pod_name)
            seen = self._terminal_events.setdefault(pod, set())
            if seen and results.resource_version not in seen:
                self.stats["duplicate_terminal_events"] += 1
            seen.add(results.resource_version)   # the same result put back after an error is no new event

    # -- the scheduler's calls -----------------------------------------------------------------

    @property
    def running(self) -> set[TaskInstanceKey]:
        return {TaskInstanceKey(*key) for key in self.inner.running}

    @property
    def slots_available(self) -> int:
        return self.inner.slots_available

    def start(self) -> None:
        self.mirror.flush()
        with self._acting():
            self.inner.start()

    def queue_command(self, key: TaskInstanceKey, command, priority=1, queue=None, executor_config=None) -> None:
        """The try's row is QUEUED by this scheduler in the database; its workload goes to upstream."""
        from airflow.executors.workloads import ExecuteTask
        self.mirror.flush()
        row = self.mirror.row(key.primary)
        workload = ExecuteTask.make(row)
        self.inner.queue_workload(workload, self.mirror.session)

    def heartbeat(self) -> None:
        self.mirror.flush()
        with self._acting():
            self.inner.heartbeat()

    def get_event_buffer(self) -> dict:
        events = {TaskInstanceKey(*key): value for key, value in self.inner.get_event_buffer().items()}
        for key, (state, info) in events.items():
            for listener in self.state_listeners:
                listener(key, state, info)
        return events

    def pending_work(self) -> int:
        """Live tries, queued workloads and results not yet applied."""
        inner = self.inner
        queues = sum(q.qsize() for q in (inner.task_queue, inner.result_queue) if q is not None)
        return len(inner.running) + len(inner.queued_tasks) + len(inner.completed) + queues

    def try_adopt_task_instances(self, tis: list) -> list:
        """Upstream adopts rows; the ones it gives back are the store's task instances to reset."""
        self.mirror.flush()
        rows = {id(self.mirror.row(ti.primary)): ti for ti in tis}
        with self._acting():
            not_adopted = self.inner.try_adopt_task_instances([self.mirror.row(ti.primary) for ti in tis])
        self.stats["adopted"] += len(tis) - len(not_adopted)
        return [rows[id(row)] for row in not_adopted]

    def revoke_task(self, key: TaskInstanceKey) -> None:
        self.mirror.flush()
        with self._acting():
            self.inner.revoke_task(ti=self.mirror.row(key.primary))

    def end(self) -> None:
        self.mirror.flush()
        with self._acting():
            self.inner.end()

    def terminate(self) -> None:
        """The scheduler's container dies: its watcher processes die with it (upstream's own
        ``terminate`` does nothing)."""
        for watcher in self.watchers:
            watcher.kill()
        self.inner.terminate()
