"""The executor in production shape against ``kubesim serve``: its threaded runtime (real threads,
the wall clock), a real kubernetes client configured from the written kubeconfig, and the
cluster on the real-time clock at 25x. Ten four-second tasks run end to end."""

from __future__ import annotations

import queue

from executor import ExecutorConfig, KubernetesExecutor, SchedulerJob, State, TaskInstance, TaskStore, ThreadedRuntime
from fakecluster import Behaviour, constant
from serving import api_client, new_cluster, serving

TASKS = 10
JOB_DEADLINE = 90.0   # wall seconds; the run needs a few


class ReportedTaskStore(TaskStore):
    """The metadata database as the tasks' own processes update it (an Airflow task writes its
    state itself; the executor reports a finished pod as "no state of its own").

    Each pod's progress is queued where the cluster stores it, so before any watch event about
    it leaves the server, and applied in the scheduler's thread before the store is read: the
    store itself is not thread-safe, as the real one is a database.
    """

    def __init__(self, runtime):
        super().__init__(runtime)
        self.reports: queue.SimpleQueue = queue.SimpleQueue()

    def _apply_reports(self) -> None:
        while True:
            try:
                self.report_from_pod(self.reports.get_nowait())
            except queue.Empty:
                return

    def get(self, key):
        self._apply_reports()
        return super().get(key)

    def in_state(self, *states):
        self._apply_reports()
        return super().in_state(*states)

    def all_done(self):
        self._apply_reports()
        return super().all_done()


def test_the_threaded_executor_runs_a_short_load_end_to_end_over_http(tmp_path):
    cluster = new_cluster(seed=4, nodes=2, behaviour=Behaviour(run_seconds=constant(4.0)))
    runtime = ThreadedRuntime()
    store = ReportedTaskStore(runtime)
    cluster.server.pods.listeners.append(lambda change: store.reports.put(change.obj))  # (before serving)
    with serving(cluster, speed=25) as server:
        client = api_client(server, tmp_path)
        tis = [store.add(TaskInstance("served_etl", f"task_{i}", "manual__1")) for i in range(TASKS)]
        # A short read timeout on the watch, so that stopping the watcher at the end is quick.
        config = ExecutorConfig.from_mapping({"worker_pods_creation_batch_size": 5, "watch_request_timeout": 1})
        job = SchedulerJob(store, runtime, "1",
                           lambda job_id: KubernetesExecutor(client, runtime, job_id, config, task_store=store),
                           loop_interval=0.1)
        job.start()
        assert job.handle.join(JOB_DEADLINE), f"the scheduler did not finish: {[ti.state for ti in tis]}"
        assert job.handle.exception is None
        assert [ti.state for ti in tis] == [State.SUCCESS] * TASKS
        executor = job.executor
        assert executor.stats["pods_created"] == TASKS and executor.stats["pods_deleted"] == TASKS
        assert not executor.running and not executor.clean_up_backlog
        assert server.call(lambda: cluster.pods()) == []        # every pod cleaned up
        assert all(not w.is_alive() for w in executor.watchers_started)
        client.close()
