"""A simulated world with an executor in it: the cluster, the task store and scheduler jobs.

The one place where fakecluster and executor meet. Tests, the scenario runner and users' own
Python tests build on it:

>>> world = World(FakeCluster(seed=1), ExecutorConfig())
>>> world.add_tasks("etl", ["extract", "load"])
>>> world.run_until_done()
"""

from __future__ import annotations

import itertools
import random
from typing import Iterable

from executor import (ExecutorConfig, KubernetesExecutor, QueuedTimeout, SchedulerJob, State, TaskInstance,
                      TaskStore)
from executor.scheduler_job import MAX_TIS_PER_QUERY
from fakecluster import FakeCluster

from .upstream import EXECUTORS, host_for


class World:
    def __init__(self, cluster: FakeCluster, config: ExecutorConfig | None = None,
                 loop_interval: float = 1.0, mutation_hook=None, max_tis_per_query: int = MAX_TIS_PER_QUERY,
                 executor: str = "kubesim"):
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
        self.cluster = cluster
        self.executor_kind = executor
        self.config = config or ExecutorConfig()
        self.loop_interval = loop_interval
        self.max_tis_per_query = max_tis_per_query
        self.mutation_hook = mutation_hook
        self.store = TaskStore(cluster.runtime)
        self.jobs: list[SchedulerJob] = []
        self.on_executor = None  # called with each new executor (the runner hooks its checks here)
        self._job_ids = itertools.count(1)
        self.report_listeners: list = []   # called with (time, try key, pod name) at each terminal report
        self.successors_due = 0  # schedulers that will start later (after a crash or stop)
        self._rng = random.Random(cluster.rng.getrandbits(32))
        # The pod reports its own progress, as an Airflow task process writes its own state.
        cluster.server.pods.listeners.append(lambda change: self.store.report_from_pod(change.obj))
        # upstream Airflow's executor instead of kubesim's: its host (Airflow's configuration and
        # metadata database) is made now, so a missing or unsupported Airflow fails before the run.
        self.upstream_host = host_for(self, self._rng.getrandbits(32)) if executor == "airflow" else None

    # -- tasks ---------------------------------------------------------------------------------

    def add_tasks(self, dag_id: str, task_ids: Iterable[str], run_id: str = "manual__1",
                  retries: int = 0, executor_config=None, priority: int = 1) -> list[TaskInstance]:
        return [self.store.add(TaskInstance(dag_id, task_id, run_id, retries=retries, priority=priority,
                                            executor_config=executor_config))
                for task_id in task_ids]

    def states(self) -> dict[str, int]:
        return self.store.counts()

    # -- schedulers ----------------------------------------------------------------------------

    def make_executor(self, job_id: str) -> KubernetesExecutor:
        if self.upstream_host is not None:
            executor = self.upstream_host.make_executor(job_id)
        else:
            executor = KubernetesExecutor(self.cluster.api_client(), self.cluster.runtime, job_id, self.config,
                                          task_store=self.store, rng=random.Random(self._rng.getrandbits(32)),
                                          mutation_hook=self.mutation_hook)
        executor.state_listeners.append(lambda key, state, info: self._reported(executor, key, state))
        if self.on_executor is not None:
            self.on_executor(executor)
        return executor

    def _reported(self, executor, key, state) -> None:
        """A try's end as its executor reported it: when, and which pod it was (result latency)."""
        if state in (State.SUCCESS, State.FAILED, None):
            pod = (executor.launched.get(key) or (executor.pod_names.get(key),))[0]
            for listener in self.report_listeners:
                listener(self.cluster.now, key, pod)

    def start_scheduler(self) -> SchedulerJob:
        """Start a new scheduler job (a new job id) in the background."""
        config = self.config
        job = SchedulerJob(self.store, self.cluster.runtime, str(next(self._job_ids)), self.make_executor,
                           self.loop_interval, config.scheduler_health_check_threshold,
                           orphan_check_interval=config.orphaned_tasks_check_interval,
                           queued_timeout=QueuedTimeout(config.task_queued_timeout,
                                                        config.task_queued_timeout_check_interval,
                                                        config.num_stuck_in_queued_retries),
                           max_tis_per_query=self.max_tis_per_query)
        self.jobs.append(job)
        job.start()
        return job

    def pick(self, which: str | int | None = None) -> SchedulerJob | None:
        """A running scheduler: "newest" (the default), "oldest", or a job id."""
        running = [job for job in self.jobs if job.running]
        if which in (None, "newest"):
            return running[-1] if running else None
        if which == "oldest":
            return running[0] if running else None
        return next((job for job in running if job.job_id == str(which)), None)

    def crash_scheduler(self, job: SchedulerJob | str | int | None = None,
                        restart_after: float | None = None) -> SchedulerJob | None:
        """Crash a scheduler (no flush); with ``restart_after``, a successor starts that much later."""
        return self._end_scheduler(job, restart_after, SchedulerJob.crash)

    def stop_scheduler(self, job: SchedulerJob | str | int | None = None,
                       restart_after: float | None = None) -> SchedulerJob | None:
        """Stop a scheduler gracefully (it finishes its loop, then hands back what it holds); with
        ``restart_after``, a successor starts that much later."""
        return self._end_scheduler(job, restart_after, SchedulerJob.request_stop)

    def stall_scheduler(self, seconds: float, job: SchedulerJob | str | int | None = None) -> SchedulerJob | None:
        """Stall a scheduler's loop for ``seconds``: it misses its heartbeats without dying."""
        job = job if isinstance(job, SchedulerJob) else self.pick(job)
        if job is not None:
            job.stall(seconds)
        return job

    def _end_scheduler(self, job, restart_after, end) -> SchedulerJob | None:
        job = job if isinstance(job, SchedulerJob) else self.pick(job)
        if job is not None and job.running:
            end(job)
        if restart_after is not None:
            self.successors_due += 1
            self.cluster.at(self.cluster.now + restart_after, self._start_successor)
        return job

    def _start_successor(self) -> None:
        self.successors_due -= 1
        self.start_scheduler()

    def restart_scheduler(self) -> SchedulerJob:
        """Crash the newest scheduler and start its successor, which must adopt its pods."""
        self.crash_scheduler()
        return self.start_scheduler()

    @property
    def scheduler(self) -> SchedulerJob:
        return self.jobs[-1]

    # -- running -------------------------------------------------------------------------------

    def run_until_done(self, timeout: float | None = None) -> None:
        """Start a scheduler if none runs, then run until every task is terminal and every
        scheduler has stopped, successors due later included. TimeoutError after ``timeout``
        virtual seconds, raised here rather than inside the simulation."""
        if not any(job.running for job in self.jobs):
            self.start_scheduler()
        deadline = None if timeout is None else self.cluster.now + timeout

        def wait_until_done() -> bool:
            while True:
                for job in self.jobs:  # a scheduler that died of an error: say why, do not wait
                    if not job.handle.is_alive() and getattr(job.handle, "exception", None) is not None:
                        raise job.handle.exception
                alive = [job for job in self.jobs if job.handle is not None and job.handle.is_alive()]
                done = self.store.all_done()
                upcoming = self.cluster.env.peek()  # a timeline may still start a scheduler
                if not alive and not self.successors_due and (done or upcoming == float("inf")):
                    return True  # nothing will move any more (lost tasks, if any, are the checks' to find)
                if done and not self.successors_due:
                    for job in alive:  # done: let the schedulers drain and stop by themselves
                        job.handle.join()
                    continue
                if deadline is not None and self.cluster.now >= deadline:
                    return False
                pause = self.loop_interval if alive else max(self.loop_interval, upcoming - self.cluster.now)
                self.cluster.sleep(pause if deadline is None else min(pause, deadline - self.cluster.now))

        if not self.cluster.run(wait_until_done):
            raise TimeoutError(f"tasks not done after {timeout}s of virtual time: {self.states()}")

    def terminal(self) -> bool:
        return all(ti.state in (State.SUCCESS, State.FAILED) for ti in self.store.tis.values())
