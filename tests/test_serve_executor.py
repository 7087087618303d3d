"""The executor in production shape against ``kubesim serve``: its threaded runtime (real threads,
the wall clock), a real kubernetes client configured from the written kubeconfig, and the
cluster on the real-time clock at 25x. Ten four-second tasks run end to end."""

from __future__ import annotations

import queue
import socket

import pytest
from serving import api_client, new_cluster, serving
from urllib3.util.retry import Retry

from executor import (
    ConfigError,
    ExecutorConfig,
    KubernetesExecutor,
    SchedulerJob,
    State,
    TaskInstance,
    TaskStore,
    ThreadedRuntime,
)
from executor.client import api_client_from_config
from fakecluster import Behaviour, constant

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


def test_the_connection_options_build_the_production_client(tmp_path):
    """in_cluster, config_file, cluster_context, api_client_retry_configuration and the TCP
    keepalive options shape the ApiClient the executor is given in production."""
    with serving(new_cluster(seed=5, nodes=1)) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        config = ExecutorConfig.from_mapping({
            "in_cluster": "False", "config_file": str(kubeconfig), "cluster_context": "kubesim",
            "api_client_retry_configuration": '{"total": 7, "backoff_factor": 0.25}',
            "tcp_keep_idle": 11, "tcp_keep_intvl": 12, "tcp_keep_cnt": 3})
        client = api_client_from_config(config)
        assert client.configuration.host == server.url
        assert isinstance(client.configuration.retries, Retry) and client.configuration.retries.total == 7
        options = client.rest_client.pool_manager.connection_pool_kw["socket_options"]
        assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 11) in options
        pods = KubernetesExecutor(client, ThreadedRuntime(), "1", config).kube.list_namespaced_pod("default")
        assert pods.items == []
        client.close()

        no_keepalive = api_client_from_config(config.replace(enable_tcp_keepalive=False))
        assert "socket_options" not in no_keepalive.rest_client.pool_manager.connection_pool_kw
        no_keepalive.close()
        with pytest.raises(ConfigError, match="cluster_context = 'elsewhere'"):
            api_client_from_config(config.replace(cluster_context="elsewhere"))
    with pytest.raises(ConfigError, match="in_cluster = true"):
        api_client_from_config(ExecutorConfig())
    with pytest.raises(ConfigError, match="urllib3 Retry keyword arguments"):
        api_client_from_config(config.replace(api_client_retry_configuration={"tries": 3}))
