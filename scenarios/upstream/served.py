"""Upstream's executor as a user runs it, out of process, against ``kubesim serve``.

Nothing is substituted here: the watcher is a forked process, the queues live in a
``multiprocessing.Manager``, the clocks are the wall clock, and the client comes from the
kubeconfig ``kubesim serve`` writes (``in_cluster=False``, ``config_file``), exactly as
``airflow scheduler`` would build it. This module plays the rest of the scheduler (a metadata
database with the task rows, a loop that queues, heartbeats and applies events) and the task
processes (a task's state follows its pod), so a short run needs no API server or DAG processor.

``python -m scenarios.upstream.served --kubeconfig kubesim.kubeconfig --tasks 4`` prints a JSON
summary. Upstream's own timers (30 s read timeouts, 1 s pauses) run on the wall clock: at
``--speed`` above 1 they are that much longer in the cluster's virtual time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import kubernetes

from executor import State, TaskInstance, ThreadedRuntime
from executor.host import TaskStore

JOB_ID = "1"


def run_served(kubeconfig: str, tasks: int, timeout: float, namespace: str = "default") -> dict:
    from .adapter import UpstreamExecutor
    from .environment import fresh_database, import_airflow
    from .environment import airflow_home, installed_versions
    from .host import POD_TEMPLATE, set_option
    from .metadb import MetadataMirror
    import_airflow()
    fresh_database()
    template = airflow_home() / "pod_template.yaml"
    template.write_text(POD_TEMPLATE.format(version=installed_versions()["apache-airflow"]), encoding="utf-8")
    for name, value in {"in_cluster": "False", "config_file": kubeconfig, "namespace": namespace,
                        "worker_pods_creation_batch_size": str(tasks), "client_factory": "",
                        "pod_template_file": str(template)}.items():
        set_option("kubernetes_executor", name, value)
    runtime = ThreadedRuntime()
    store = TaskStore(runtime)
    tis = [store.add(TaskInstance("served", f"task_{i}", "manual__1")) for i in range(tasks)]
    started = runtime.now()
    mirror = MetadataMirror(store, random.Random(0), datetime.now(timezone.utc) - timedelta(seconds=started))
    executor = UpstreamExecutor(None, mirror, JOB_ID)
    store.jobs[JOB_ID] = _job(runtime)
    executor.start()
    for ti in tis:
        ti.try_number, ti.queued_by_job_id = 1, JOB_ID
        store.set_state(ti, State.QUEUED)
        executor.queue_command(ti.key, ti.command())
    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=kubeconfig))
    events: dict[str, list] = {}
    while not store.all_done() and runtime.now() - started < timeout:
        for pod in core.list_namespaced_pod(namespace).items:   # the task processes write their state
            store.report_from_pod(core.api_client.sanitize_for_serialization(pod))
        store.jobs[JOB_ID].latest_heartbeat = runtime.now()
        executor.heartbeat()
        for key, (state, _info) in executor.get_event_buffer().items():
            events.setdefault(key.task_id, []).append(str(state))
        time.sleep(1)
    executor.end()
    return {"states": {ti.task_id: ti.state for ti in tis}, "events": events,
            "pods_left": [p.metadata.name for p in core.list_namespaced_pod(namespace).items],
            "seconds": round(runtime.now() - started, 1)}


def _job(runtime):
    from executor.host import JobRecord
    return JobRecord(JOB_ID, State.RUNNING, runtime.now())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="the kubeconfig kubesim serve wrote")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0, help="wall seconds to wait for the tasks")
    args = parser.parse_args(argv)
    summary = run_served(args.kubeconfig, args.tasks, args.timeout)
    print(json.dumps(summary))
    return 0 if all(state == State.SUCCESS for state in summary["states"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
