"""Running scenarios end to end (fakecluster + real kubernetes client + executor) and the
invariants every run checks (scenarios.runner, scenarios.invariants)."""

from __future__ import annotations

from pathlib import Path

import kubernetes

from executor import State, TaskInstanceKey
from fakecluster import FakeCluster
from scenarios.invariants import Watchdog, final_checks
from scenarios.loader import load
from scenarios.runner import describe_failure, run
from scenarios.world import World

SMALL = """\
name: small
seed: 3
cluster: {nodes: 1}
workload:
  dags: 1
  tasks_per_dag: 3
  names: plain
  run_seconds: {uniform: [5, 15]}
expect:
  all_tasks: success
  metrics:
    tasks_succeeded: {TASKS}
until:
  max_virtual_seconds: {LIMIT}
"""
EXPECTATION_LINE = 12
UNTIL_LINE = 14


def scenario(tmp_path: Path, tasks: int = 3, limit: int = 600):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("{TASKS}", str(tasks)).replace("{LIMIT}", str(limit)), encoding="utf-8")
    [loaded] = load(path)
    return loaded


def test_passing_scenario_reports_metrics(tmp_path):
    result = run(scenario(tmp_path))
    assert result.passed, describe_failure(result)
    assert result.seed == 3
    assert result.metrics["tasks_succeeded"] == 3 and result.metrics["tasks_failed"] == 0
    assert result.metrics["makespan"] >= 5
    assert result.metrics["api_calls"] > 0 and result.metrics["pods_created"] == 3
    assert any(verb == "create" and status == "201" and n == 3 for verb, status, n in result.api_calls)


def test_failed_expectation_names_it_with_expected_actual_and_line(tmp_path):
    loaded = scenario(tmp_path, tasks=4)
    result = run(loaded)
    assert not result.passed
    [failure] = result.failures
    assert failure.check == "expect.metrics.tasks_succeeded"
    assert failure.message == "expected tasks_succeeded >= 4, got 3"
    assert failure.line == EXPECTATION_LINE
    report = describe_failure(result)
    assert f"{loaded.path}:{EXPECTATION_LINE}: expect.metrics.tasks_succeeded" in report
    assert "seed 3" in report and f"replay: kubesim run {loaded.path} --seed 3" in report


def test_too_short_a_run_fails_the_until_check(tmp_path):
    result = run(scenario(tmp_path, limit=4))
    checks = {f.check: f for f in result.failures}
    assert "until" in checks, result.failures
    assert checks["until"].line == UNTIL_LINE
    assert "not done after 4" in checks["until"].message
    assert result.virtual_seconds >= 4
    # a clean failure: the cut-off, the metrics up to it, and no verdict the cut made meaningless
    assert "no task lost" not in checks and "no orphan pods" not in checks
    verdicts = {c.name: c.passed for c in result.invariants}
    assert verdicts["no task lost"] is None and verdicts["one live pod per try"] is True
    assert result.metrics["pods_created"] == 3 and result.metrics["api_calls"] > 0
    assert result.expectations[0].name == "until.max_virtual_seconds" and result.expectations[0].passed is False
    assert result.crash == "" and not any("crashed" in line.message for line in result.log_lines)


def test_same_seed_same_run_and_replay_names_the_seed(tmp_path):
    loaded = scenario(tmp_path)
    first, second = run(loaded), run(loaded)
    assert first.metrics == second.metrics
    assert first.api_calls == second.api_calls and first.last_events == second.last_events
    assert first.replay == second.replay == f"kubesim run {loaded.path} --seed 3"


def test_seed_override_changes_the_run(tmp_path):
    loaded = scenario(tmp_path)
    default, other = run(loaded), run(loaded, seed=99)
    assert other.seed == 99 and other.replay.endswith("--seed 99")
    assert other.passed, describe_failure(other)
    pods = lambda result: {event[5] for event in result.last_events}
    assert pods(default) != pods(other)  # pod name suffixes come from the seeded RNG


def test_matrix_variant_replay_selects_the_variant(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("workload: {tasks_per_dag: 1, names: plain, run_seconds: 1}\n"
                    "matrix:\n  - {cluster.nodes: 1}\n  - {cluster.nodes: 2}\n", encoding="utf-8")
    result = run(load(path)[1], seed=4)
    assert result.passed and result.scenario_id == "grid[nodes=2]"
    assert result.replay == f"kubesim run {path} --seed 4 --variant nodes=2"


# -- invariants ------------------------------------------------------------------------------------

def try_annotations(task_id: str, try_number: str = "1") -> dict:
    return {"dag_id": "etl", "task_id": task_id, "run_id": "manual__1", "try_number": try_number}


def pod(name: str, annotations: dict, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations, "labels": labels or {}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]}}


def test_final_checks_find_an_orphan_pod():
    world = World(FakeCluster(seed=1))
    api = kubernetes.client.CoreV1Api(world.cluster.api_client())

    def leave_pods_behind():
        done = {**try_annotations("extract"), "kubesim.io/run-seconds": "1"}
        api.create_namespaced_pod("default", pod("extract-done", done))
        api.create_namespaced_pod("default", pod("load-left", {**try_annotations("load"),
                                                              "kubesim.io/run-seconds": "3600"}))
        world.cluster.sleep(5)
        api.patch_namespaced_pod("extract-done", "default",
                                 {"metadata": {"labels": {"airflow_executor_done": "True"}}})

    world.cluster.run(leave_pods_behind)
    assert world.cluster.pod("default", "extract-done")["status"]["phase"] == "Succeeded"
    violations = final_checks(world, Watchdog())
    assert [v.invariant for v in violations] == ["no orphan pods"]
    assert "1 pod(s) left behind" in violations[0].message and "load-left" in violations[0].message
    assert "extract-done" not in violations[0].message


def test_watchdog_flags_two_live_pods_for_one_try():
    cluster = FakeCluster(seed=2)
    watchdog = Watchdog(now=lambda: cluster.now)
    cluster.server.pods.listeners.append(watchdog.on_pod_change)
    api = kubernetes.client.CoreV1Api(cluster.api_client())
    stuck = {"kubesim.io/unschedulable": "true"}

    def launch_twice():
        api.create_namespaced_pod("default", pod("extract-a", {**try_annotations("extract"), **stuck}))
        api.create_namespaced_pod("default", pod("other-try", {**try_annotations("extract", "2"), **stuck}))
        assert watchdog.violations == []  # another try of the same task is fine
        cluster.sleep(3)
        api.create_namespaced_pod("default", pod("extract-b", {**try_annotations("extract"), **stuck}))

    cluster.run(launch_twice)
    assert watchdog.violations, "two live pods for one try went unnoticed"
    violation = watchdog.violations[0]
    assert violation.invariant == "one live pod per try"
    assert "['extract-a', 'extract-b']" in violation.message and violation.time == 3


def test_watchdog_flags_a_try_reported_twice():
    watchdog = Watchdog()
    key = TaskInstanceKey("etl", "extract", "manual__1", 1, 2)
    watchdog.on_state(key, State.SUCCESS, None)
    assert watchdog.violations == []
    watchdog.on_state(key, State.FAILED, "replayed")
    assert [v.invariant for v in watchdog.violations] == ["reported once"]
    assert "etl.extract (manual__1, map index 2, try 1) reported terminal twice" in watchdog.violations[0].message


# -- the world's run loop --------------------------------------------------------------------------

def test_run_until_done_waits_for_a_successor_started_later_by_a_timer():
    cluster = FakeCluster(seed=5, nodes=1)
    world = World(cluster)
    world.add_tasks("etl", [f"t{i}" for i in range(4)])
    world.start_scheduler()
    cluster.at(3, world.crash_scheduler)           # no scheduler alive from t=3 ...
    cluster.at(60, world.start_scheduler)          # ... until its successor starts at t=60
    world.run_until_done(timeout=600)
    assert world.terminal() and len(world.jobs) == 2, world.states()
    assert cluster.now >= 60


def test_run_until_done_timeout_is_raised_outside_the_simulation(caplog):
    cluster = FakeCluster(seed=5, nodes=1)
    world = World(cluster)
    world.add_tasks("etl", ["t0"])
    try:
        world.run_until_done(timeout=2)
    except TimeoutError as exc:
        assert "not done after 2" in str(exc)
    else:
        raise AssertionError("a 10 s task cannot finish in 2 s")
    assert not cluster.kernel.crashed and "crashed" not in caplog.text  # no process died of it


def test_queue_depth_never_goes_negative_and_spans_the_whole_run():
    [loaded] = load(Path(__file__).parent.parent / "scenarios/catalogue/scheduler_restart.yaml")
    result = run(loaded)
    depths = [depth for _, depth in result.queue_depth]
    times = [t for t, _ in result.queue_depth]
    assert min(depths) == 0 and max(depths) > 0
    assert times == sorted(set(times))                      # one point per instant
    assert times[0] == 0 and times[-1] == result.virtual_seconds and depths[-1] == 0
