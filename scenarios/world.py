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

from executor import ExecutorConfig, KubernetesExecutor, SchedulerJob, State, TaskInstance, TaskStore
from executor.host import MAX_TIS_PER_QUERY
from fakecluster import FakeCluster


class World:
    def __init__(self, cluster: FakeCluster, config: ExecutorConfig | None = None,
                 loop_interval: float = 1.0, mutation_hook=None, max_tis_per_query: int = MAX_TIS_PER_QUERY):
        self.cluster = cluster
        self.config = config or ExecutorConfig()
        self.loop_interval = loop_interval
        self.max_tis_per_query = max_tis_per_query
        self.mutation_hook = mutation_hook
        self.store = TaskStore(cluster.runtime)
        self.jobs: list[SchedulerJob] = []
        self.on_executor = None  # called with each new executor (the runner hooks its checks here)
        self._job_ids = itertools.count(1)
        self._rng = random.Random(cluster.rng.getrandbits(32))
        # The pod reports its own progress, as an Airflow task process writes its own state.
        cluster.server.pods.listeners.append(lambda change: self.store.report_from_pod(change.obj))

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
        executor = KubernetesExecutor(self.cluster.api_client(), self.cluster.runtime, job_id, self.config,
                                      task_store=self.store, rng=random.Random(self._rng.getrandbits(32)),
                                      mutation_hook=self.mutation_hook)
        if self.on_executor is not None:
            self.on_executor(executor)
        return executor

    def start_scheduler(self) -> SchedulerJob:
        """Start a new scheduler job (a new job id) in the background."""
        job = SchedulerJob(self.store, self.cluster.runtime, str(next(self._job_ids)), self.make_executor,
                           self.loop_interval, self.config.scheduler_health_check_threshold,
                           orphan_check_interval=self.config.orphaned_tasks_check_interval,
                           max_tis_per_query=self.max_tis_per_query)
        self.jobs.append(job)
        job.start()
        return job

    def crash_scheduler(self, job: SchedulerJob | None = None) -> SchedulerJob:
        job = job or self.jobs[-1]
        job.crash()
        return job

    def restart_scheduler(self) -> SchedulerJob:
        """Crash the newest scheduler and start its successor, which must adopt its pods."""
        self.crash_scheduler()
        return self.start_scheduler()

    @property
    def scheduler(self) -> SchedulerJob:
        return self.jobs[-1]

    # -- running -------------------------------------------------------------------------------

    def run_until_done(self, timeout: float | None = None) -> None:
        """Start a scheduler if none runs, then run until every task is terminal."""
        if not any(job.running for job in self.jobs):
            self.start_scheduler()

        def wait_until_done():
            deadline = None if timeout is None else self.cluster.now + timeout
            while not self.store.all_done() and any(job.running or job.handle.is_alive() for job in self.jobs):
                for job in self.jobs:  # a scheduler that died of an error: say why, do not wait
                    if not job.handle.is_alive() and getattr(job.handle, "exception", None) is not None:
                        raise job.handle.exception
                if deadline is not None and self.cluster.now >= deadline:
                    raise TimeoutError(f"tasks not done after {timeout}s of virtual time: {self.states()}")
                self.cluster.sleep(self.loop_interval)
            for job in self.jobs:
                if job.handle is not None:
                    job.handle.join()

        self.cluster.run(wait_until_done)

    def terminal(self) -> bool:
        return all(ti.state in (State.SUCCESS, State.FAILED) for ti in self.store.tis.values())
