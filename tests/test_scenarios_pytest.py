"""Scenario files as pytest items (scenarios.pytest_plugin), run in a throwaway project."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

GOOD = """\
name: good
seed: 3
cluster: {nodes: 1}
workload: {dags: 1, tasks_per_dag: 2, names: plain, run_seconds: 5}
expect:
  all_tasks: success
  metrics:
    tasks_succeeded: 2
until: {max_virtual_seconds: 600}
"""

FAILING = GOOD.replace("name: good", "name: wants-more").replace("tasks_succeeded: 2", "tasks_succeeded: 5")
FAILING_LINE = 8

MATRIX = """\
name: grid
workload: {dags: 1, tasks_per_dag: 1, names: plain, run_seconds: 5}
matrix:
  - {cluster.nodes: 1}
  - {cluster.nodes: 4}
"""

BAD = "name: bad\ncluster:\n  nodes: 1\n  nodse: 2\n"


@pytest.fixture
def project(pytester):
    """A project whose conftest loads the plugin; scenario files go in its scenarios/ folder."""
    pytester.makeconftest('pytest_plugins = ["scenarios.pytest_plugin"]')
    folder = pytester.mkdir("scenarios")

    def add(name: str, text: str):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    pytester.add = add
    return pytester


def test_good_scenario_is_collected_and_passes(project):
    project.add("good.yaml", GOOD)
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["scenarios/good.yaml::good PASSED*"])


def test_matrix_gives_one_item_per_variant_and_k_selects(project):
    project.add("grid.yaml", MATRIX)
    collected = project.runpytest("--collect-only", "-q")
    collected.stdout.fnmatch_lines(["scenarios/grid.yaml::grid[[]nodes=1]", "scenarios/grid.yaml::grid[[]nodes=4]"])
    result = project.runpytest("-v", "-k", "grid and 4")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["scenarios/grid.yaml::grid[[]nodes=4] PASSED*"])


def test_bad_file_is_a_collection_error_for_that_file_only(project):
    project.add("bad.yaml", BAD)
    good = project.add("good.yaml", GOOD)
    # pytest stops at any collection error unless told to go on; the good file then still runs
    result = project.runpytest("-v", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/bad.yaml*",
                                 "*bad.yaml:4: cluster.nodse: unknown key 'nodse'*"])
    result.stdout.fnmatch_lines(["scenarios/good.yaml::good PASSED*"])
    assert "ERROR scenarios/good.yaml" not in result.stdout.str() and good.exists()


def test_failing_scenario_report_shows_seed_expectation_and_replay(project):
    path = project.add("wants_more.yaml", FAILING)
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"scenario wants-more ({path}) failed, seed 3, virtual time *",
        f"  {path}:{FAILING_LINE}: expect.metrics.tasks_succeeded: expected tasks_succeeded >= 5, got 2",
        "  last events before the end*",
        f"  replay: kubesim run {path} --seed 3",
    ])


def test_slow_marker_is_deselected_by_m(project):
    project.add("good.yaml", GOOD)
    project.add("slow.yaml", GOOD.replace("name: good", "name: slowpoke\nmarkers: [slow]"))
    result = project.runpytest("-v", "--strict-markers", "-m", "not slow")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["scenarios/good.yaml::good PASSED*"])
    only_slow = project.runpytest("-v", "--strict-markers", "-m", "slow")
    only_slow.assert_outcomes(passed=1, deselected=1)
    only_slow.stdout.fnmatch_lines(["scenarios/slow.yaml::slowpoke PASSED*"])


def test_kubesim_seed_overrides_the_file_seed(project):
    path = project.add("wants_more.yaml", FAILING)
    result = project.runpytest("--kubesim-seed", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"scenario wants-more ({path}) failed, seed 5, *",
                                 f"  replay: kubesim run {path} --seed 5"])
    assert "seed 3" not in result.stdout.str()


def test_fixtures_give_a_world_on_a_seeded_cluster(project):
    project.makepyfile(test_world="""
        def test_world(fake_cluster, executor_world):
            assert executor_world.cluster is fake_cluster and fake_cluster.seed == 5
            executor_world.add_tasks("etl", ["extract", "load"])
            executor_world.run_until_done(timeout=3600)
            assert executor_world.states() == {"success": 2}
    """)
    project.runpytest("--kubesim-seed", "5").assert_outcomes(passed=1)


@pytest.mark.airflow
def test_a_scenario_under_test_with_airflow_runs_upstream_or_skips_saying_why(project, monkeypatch):
    from scenarios.upstream import unavailable_reason
    available = unavailable_reason() is None
    project.add("upstream.yaml", "under_test: airflow\n" + GOOD.replace("name: good", "name: upstream"))
    monkeypatch.delenv("KUBESIM_REQUIRE_AIRFLOW", raising=False)
    if available:   # in a process of its own: Airflow's import is not for this test process to keep
        result = project.runpytest_subprocess("-v")
        result.assert_outcomes(failed=1)   # upstream deletes each Succeeded pod twice
        result.stdout.fnmatch_lines(["*one clean-up per pod*"])
        return
    result = project.runpytest("-v", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*Airflow's KubernetesExecutor is not installed*KUBESIM_REQUIRE_AIRFLOW=1*"])
    monkeypatch.setenv("KUBESIM_REQUIRE_AIRFLOW", "1")   # CI's Airflow environment: a missing Airflow fails
    project.runpytest().assert_outcomes(failed=1)


def test_kubesim_executor_option_runs_every_scenario_with_that_executor(project):
    project.add("good.yaml", GOOD)
    result = project.runpytest("-v", "--kubesim-executor", "kubesim")
    result.assert_outcomes(passed=1)
