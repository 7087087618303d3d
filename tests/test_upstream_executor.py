"""Upstream Airflow's unmodified KubernetesExecutor in virtual time (the airflow extra).

Each test runs a small scenario with ``--executor airflow`` semantics through the same runner,
invariants and metrics as kubesim's executor, and checks upstream's known behaviour under the
fault: a 410 kills its watcher, which restarts from "0"; an idle read timeout resumes from "0";
each Succeeded pod is deleted twice; a 429 with no publish retries fails the task; a crashed
scheduler's successor adopts its pods. Without Airflow these skip (CI's Airflow environment sets
KUBESIM_REQUIRE_AIRFLOW=1, which makes that a failure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scenarios.loader import load
from scenarios.pytest_plugin import require_airflow
from scenarios.runner import run

pytestmark = pytest.mark.airflow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def airflow_installed():
    require_airflow()


def scenario(tmp_path: Path, body: str, name: str = "upstream") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        seed: 5
        executor: {{worker_pods_creation_batch_size: 8}}
        workload: {{dags: 1, tasks_per_dag: 8, names: plain, run_seconds: 20}}
        """) + textwrap.dedent(body), encoding="utf-8")
    return path


def run_airflow(path: Path, seed: int | None = None):
    return run(load(path)[0], seed=seed, executor="airflow")


def broken(result) -> set[str]:
    return {check.name for check in result.invariants if check.passed is False}


def test_upstream_runs_a_scenario_with_the_same_invariants_and_deletes_each_pod_twice(tmp_path):
    result = run_airflow(scenario(tmp_path, ""))
    assert result.executor == "airflow"
    assert result.metrics["tasks_succeeded"] == 8 and result.metrics["pods_created"] == 8
    # the watcher reports the Succeeded pod, then the DELETED event of its own delete: a second DELETE (#72803)
    assert broken(result) == {"one clean-up per pod"}
    calls = {(verb, status): n for verb, status, n in result.api_calls}
    assert calls[("delete", "200")] == 8 and calls[("delete", "404")] == 8
    assert result.per_pod["delete"] == {"max": 2, "mean": 2.0}
    assert 0 < result.metrics["result_latency_p50"] <= 1.0   # the pod is deleted before its try is reported
    assert any(line.logger.startswith("airflow.providers.cncf.kubernetes") for line in result.log_lines)


def test_a_410_kills_upstreams_watcher_and_the_health_check_restarts_it_from_0(tmp_path):
    result = run_airflow(scenario(tmp_path, "faults: [{at: 10, expire_watches: {}}]\n"))
    assert result.metrics["watcher_deaths"] == 1 and result.metrics["watch_410s"] == 1
    assert result.metrics["watch_resumes_from_0"] == 2   # the first watch, and the restart: every pod replayed
    messages = [line.message for line in result.log_lines]
    assert any("Unknown error in KubernetesJobWatcher" in m for m in messages)
    assert any("Process died for unknown reasons" in m for m in messages)
    assert result.metrics["tasks_succeeded"] == 8


def test_an_idle_read_timeout_restarts_upstreams_watch_from_0(tmp_path):
    result = run_airflow(scenario(tmp_path, "faults: [{at: 5, stall_watches: {seconds: 40}}]\n"))
    assert result.metrics["watcher_deaths"] == 0
    assert result.metrics["watch_resumes_from_0"] >= 2
    assert any("Kubernetes watch timed out waiting for events" in line.message for line in result.log_lines)
    assert result.metrics["tasks_succeeded"] == 8


def test_a_429_with_no_publish_retries_fails_the_task(tmp_path):
    path = scenario(tmp_path, """\
        faults: [{api_errors: {code: 429, verbs: [create], count: 1, retry_after: 2}}]
        """)
    text = path.read_text().replace("worker_pods_creation_batch_size: 8", "worker_pods_creation_batch_size: 8, "
                                    "task_publish_max_retries: 0")
    path.write_text(text)
    result = run_airflow(path)
    assert result.metrics["tasks_failed"] == 1 and result.metrics["tasks_succeeded"] == 7


def test_a_crashed_schedulers_successor_adopts_its_pods_with_upstreams_executor(tmp_path):
    result = run_airflow(scenario(tmp_path, "faults: [{at: 8, crash_scheduler: {restart_after: 5}}]\n"))
    assert result.metrics["scheduler_restarts"] == 1
    assert result.metrics["adopted_pods"] == 8
    assert result.metrics["tasks_succeeded"] == 8
    assert broken(result) == {"one clean-up per pod"}


DIGEST = """\
import hashlib, sys
from scenarios.loader import load
from scenarios.build import build_world
world = build_world(load(sys.argv[1])[0].scenario, 5, executor="airflow")
world.run_until_done(timeout=3600)
print(hashlib.sha256(repr(world.cluster.trace).encode()).hexdigest(), sorted(world.cluster.gateway.calls.items()))
"""


def test_same_seed_same_trace_under_different_hash_seeds(tmp_path):
    path = scenario(tmp_path, "faults: [{at: 10, expire_watches: {}}]\n")
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", DIGEST, str(path)], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]


def test_kubesim_compare_puts_both_executors_side_by_side(tmp_path):
    path = scenario(tmp_path, "faults: [{at: 10, expire_watches: {}}]\n")
    out = tmp_path / "compare.json"
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "compare", str(path), "--json", str(out),
                           "--markdown", str(tmp_path / "compare.md")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["executor"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"kubesim", "airflow"}
    assert rows["kubesim"]["violations"] == {} and rows["kubesim"]["metrics"]["watcher_deaths"] == 0
    assert rows["airflow"]["violations"] == {"one clean-up per pod": 8}
    assert rows["airflow"]["metrics"]["watcher_deaths"] == 1
    assert rows["airflow"]["api_errors"]["delete 404"] == 8
    assert "invariant violations" in done.stdout and "airflow" in done.stdout
    assert "| `upstream` | kubesim |" in (tmp_path / "compare.md").read_text()


def test_kubesim_run_executor_airflow_replays_with_the_executor(tmp_path):
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(scenario(tmp_path, "")),
                           "--executor", "airflow", "--log", str(tmp_path / "run.log")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]   # upstream breaks "one clean-up per pod"
    assert "executor airflow" in done.stdout
    assert "--executor airflow" in done.stdout          # the replay command names it
    assert "Start Kubernetes executor" in (tmp_path / "run.log").read_text()


# -- the supported-versions check ------------------------------------------------------------

def test_a_substituted_name_that_changed_is_refused_naming_the_provider_version(monkeypatch):
    from scenarios.upstream import substitutions
    utils = substitutions._module(substitutions.UTILS)
    executor = substitutions._module(substitutions.EXECUTOR)
    monkeypatch.setattr(utils, "time", object())
    monkeypatch.delattr(executor, "DynamicClient")
    problems = substitutions.check()
    assert any(p.startswith(f"{substitutions.UTILS}.time is <object") and "not the time module" in p
               for p in problems), problems
    assert f"{substitutions.EXECUTOR}.DynamicClient no longer exists (expected kubernetes.dynamic.DynamicClient)" \
        in problems
    message = str(substitutions.refusal(problems))
    assert "apache-airflow-providers-cncf-kubernetes 10.25" in message and "cannot simulate it faithfully" in message


def test_a_reworked_watcher_is_refused(monkeypatch):
    from scenarios.upstream import substitutions
    utils = substitutions._module(substitutions.UTILS)
    monkeypatch.delattr(utils.KubernetesJobWatcher, "process_error")
    assert "KubernetesJobWatcher.process_error no longer exists" in substitutions.check()


def test_the_installed_upstream_passes_every_check():
    from scenarios.upstream import substitutions
    assert substitutions.check() == []
    assert substitutions.version_problem() is None


def test_an_airflow_without_the_modules_the_adapter_drives_is_refused(monkeypatch):
    from scenarios.upstream import substitutions
    real = substitutions._module

    def without_workloads(name):
        if name == "airflow.executors.workloads":
            raise ImportError("No module named 'airflow.executors.workloads'")
        return real(name)
    monkeypatch.setattr(substitutions, "_module", without_workloads)
    assert substitutions.check() == ["cannot import airflow.executors.workloads (No module named "
                                     "'airflow.executors.workloads')"]
