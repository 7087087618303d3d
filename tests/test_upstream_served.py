"""Upstream's executor as a user runs it, against ``kubesim serve``: out of process, nothing
substituted (a forked watcher, a Manager's queues, the wall clock), its client built from the
kubeconfig the server writes (``in_cluster=False``). Marked airflow: skips without the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fakecluster import Behaviour, constant
from scenarios.pytest_plugin import require_airflow
from tests.serving import new_cluster, serving

pytestmark = pytest.mark.airflow
ROOT = Path(__file__).resolve().parent.parent


def test_upstreams_executor_runs_tasks_against_kubesim_serve(tmp_path):
    require_airflow()
    cluster = new_cluster(seed=4, nodes=2, behaviour=Behaviour(run_seconds=constant(10.0)))
    with serving(cluster, speed=20) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubesim.kubeconfig")
        done = subprocess.run([sys.executable, "-m", "scenarios.upstream.served", "--kubeconfig", str(kubeconfig),
                               "--tasks", "4", "--timeout", "60"], capture_output=True, text=True, cwd=ROOT,
                              timeout=180)
        calls = server.call(lambda: dict(server.gateway.calls))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["states"] == {f"task_{i}": "success" for i in range(4)}
    assert all(events[-1] == "success" for events in summary["events"].values())
    assert summary["pods_left"] == []
    assert calls.get(("create", 201)) == 4 and calls.get(("delete", 200)) == 4, calls
    assert calls[("watch", 200)] >= 1
