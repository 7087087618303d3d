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
from fakecluster import FakeCluster


class World:
    def __init__(self, cluster: FakeCluster, config: ExecutorConfig | None = None,
                 loop_interval: float = 1.0, mutation_hook=None):
        self.cluster = cluster
        self.config = config or ExecutorConfig()
        self.loop_interval = loop_interval
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
        counts: dict[str, int] = {}
        for ti in self.store.tis.values():
            counts[str(ti.state)] = counts.get(str(ti.state), 0) + 1
        return counts

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
                           orphan_check_interval=self.config.orphaned_tasks_check_interval)
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
        """Start a scheduler if none runs, then run until every task is terminal.

        With no scheduler alive it keeps waiting while anything is still scheduled in the
        simulation (a fault timeline may start a successor later); TimeoutError after
        ``timeout`` virtual seconds, raised here rather than inside the simulation."""
        if not any(job.running for job in self.jobs):
            self.start_scheduler()
        deadline = None if timeout is None else self.cluster.now + timeout

        def wait_until_done() -> bool:
            while not self.store.all_done():
                for job in self.jobs:  # a scheduler that died of an error: say why, do not wait
                    if not job.handle.is_alive() and getattr(job.handle, "exception", None) is not None:
                        raise job.handle.exception
                alive = any(job.running or job.handle.is_alive() for job in self.jobs)
                upcoming = self.cluster.env.peek()  # nothing scheduled: no successor can come
                if not alive and upcoming == float("inf"):
                    break
                if deadline is not None and self.cluster.now >= deadline:
                    return False
                pause = self.loop_interval if alive else max(self.loop_interval, upcoming - self.cluster.now)
                self.cluster.sleep(pause if deadline is None else min(pause, max(0.0, deadline - self.cluster.now)))
            for job in self.jobs:
                if job.handle is not None:
                    job.handle.join()
            return True

        if not self.cluster.run(wait_until_done):
            raise TimeoutError(f"tasks not done after {timeout}s of virtual time: {self.states()}")

    def terminal(self) -> bool:
        return all(ti.state in (State.SUCCESS, State.FAILED) for ti in self.store.tis.values())
