"""The scale benchmark's machinery on tiny runs: its record/replay floor must replay exactly what
the executor did, and the simulation-only driver must push every pod through. Speed is never
asserted here (benchmarks/ measures it)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import scale  # noqa: E402


def workload(tasks: int, raw: bool = False) -> scale.Workload:
    return scale.Workload.from_args(scale.parse_args(["--tasks", str(tasks), "--parallelism", "8",
                                                      "--batch", "4", "--run-seconds", "5", "10",
                                                      *(["--raw"] if raw else [])]), tasks)


@pytest.mark.parametrize("raw", [False, True], ids=["models", "raw"])
def test_floor_replays_the_executors_calls_and_bytes(raw):
    recording = scale.record(workload(12, raw))
    scale.check_all_succeeded(workload(12, raw), recording.outcome)
    methods = {call.method for call in recording.calls}
    assert {"create_namespaced_pod", "delete_namespaced_pod", "list_namespaced_pod"} <= methods
    _, tally = scale.replay_floor(recording, raw)   # raises on any mismatch
    assert tally.calls == len(recording.calls) and tally.errors == 0
    assert tally.events == recording.outcome.events_handled > 0


def test_same_seed_same_world():
    first, second = scale.record(workload(6)), scale.record(workload(6))
    scale.same_world(scale.asdict(first.outcome), scale.asdict(second.outcome))


def test_sim_only_pushes_every_pod_through():
    _, driver, cluster = scale.run_sim_only(workload(15))
    assert driver.done == driver.created == 15
    assert driver.events >= 15 * 3   # at least ADDED, a terminal phase and DELETED each
    assert cluster.pods() == []


def test_children_get_the_options_but_not_the_sweep():
    argv = ["--sweep", "1000,10000", "--raw", "--json=out.json", "--tasks", "5", "--nodes", "7"]
    assert scale.child_argv(argv) == ["--raw", "--nodes", "7"]


def test_the_instruction_counts_floor_replays_the_recorded_run(tmp_path):
    """instructions.py's children: what one records, another replays exactly (it raises on any
    request or event that differs, or a recorded answer left unused)."""
    import instructions
    log = str(tmp_path / "recorded.pickle")
    instructions.child("record", 8, False, log)
    assert os.path.getsize(log) > 0
    instructions.child("floor", 8, False, log)
    with pytest.raises(Exception, match="left .* recorded answers unused"):
        instructions.child("floor", 4, False, log)   # a shorter replay leaves answers over


def test_fake_overhead_reports_every_round_and_the_best_of_each_side():
    """fake_overhead.py on a tiny run: the floor replays the simulated run (it raises otherwise),
    and the report holds each round's ratio beside the best-of figure."""
    import fake_overhead
    result = fake_overhead.measure(fake_overhead.parse_args(["--pods", "6", "--repeat", "2", "--no-profile"]))
    assert result["watch_events"] == 6 * 5 and result["requests"]["POST"] == 6
    assert len(result["paired_ratios_cpu"]) == 2
    spread = result["paired_overhead_cpu_pct"]
    assert spread["min"] <= spread["median"] <= spread["max"]
    assert result["ratio_cpu"] == result["simulated_cpu_s"] / result["floor_cpu_s"]


def test_interference_times_each_kind_of_work_between_the_creates():
    """interference.py on a tiny run: every kind of work runs after each create and is timed
    apart from the client; the replay raises if the client's calls stray from the recording."""
    import interference
    result = interference.measure(interference.parse_args(["--pods", "5", "--repeat", "1", "--spin", "50"]))
    kinds = result["kinds"]
    assert list(kinds) == list(interference.KINDS)
    assert kinds["none"]["injected_us"] == 0 and kinds["none"]["interference"] is None
    assert all(kinds[kind]["injected_us"] > 0 for kind in ("spin", "parse", "fake POST"))


def test_interference_fake_post_must_be_answered_201():
    import interference
    work = interference.fake_post(3, 0)
    body = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}'
    work("http://localhost/api/v1/namespaces/bench/pods", {"Content-Type": "application/json"}, body)
    with pytest.raises(RuntimeError, match="answered the recorded create with 404"):
        work("http://localhost/api/v1/namespaces/elsewhere/pods", {"Content-Type": "application/json"}, body)


def test_the_user_path_runs_kubesim_run_and_the_bare_world_on_the_same_file(tmp_path):
    """scale.py --scenario: both sides run in their own process and must be the same world (the
    comparison raises otherwise); a derived copy scales the workload."""
    import user_path
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text("name: tiny\nseed: 3\nworkload: {dags: 1, tasks_per_dag: 4, names: plain, "
                        "run_seconds: {constant: 5}}\nexpect: {all_tasks: success}\n")
    result = user_path.compare(scenario, tasks=8)
    assert result["workload"]["tasks"] == 8 and result["user"]["passed"]
    assert result["bare"]["calls"] == result["user"]["calls"] and ["create", "201", 8] in result["user"]["calls"]
    assert result["ratio"] == result["user"]["wall_s"] / result["bare"]["wall_s"]
    assert {v["target"] for v in result["verdicts"]} == {"kubesim run within 1.15x of the bare world"}


def test_small_worlds_split_each_run_and_leave_the_runner_as_it_was(tmp_path):
    import user_path
    from scenarios import runner
    from scenarios.world import World
    before = runner.build_world, World.run_until_done
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text("seed: 2\nworkload: {tasks_per_dag: 3, run_seconds: {constant: 5}}\n")
    result = user_path.small_worlds(str(scenario), runs=2)
    parts = result["warm_ms"]
    assert parts["total"] > 0 and abs(sum(parts.values()) - 2 * parts["total"]) < 1e-6 * parts["total"] + 1e-9
    assert (runner.build_world, World.run_until_done) == before
