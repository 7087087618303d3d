"""What-if sweeps (scenarios.sweep): --set parsing, local process pools and a Dask cluster give
the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.loader import ScenarioError
from scenarios.sweep import parse_sets, sweep

BASE = """\
name: sweep-small
seed: 5
cluster: {nodes: 1}
workload: {dags: 1, tasks_per_dag: 2, names: plain, run_seconds: {uniform: [5, 20]}}
expect: {all_tasks: success}
until: {max_virtual_seconds: 600}
"""
GRID = {"workload.tasks_per_dag": [2, 3]}


@pytest.fixture
def base(tmp_path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(BASE, encoding="utf-8")
    return path


def test_parse_sets_types_values_as_yaml():
    grid = parse_sets(["executor.worker_pods_creation_batch_size=1,8", "workload.failure_probability=0.1,0.5",
                       " workload.names =plain,awkward", "executor.delete_worker_pods=true,false"])
    assert grid == {"executor.worker_pods_creation_batch_size": [1, 8], "workload.failure_probability": [0.1, 0.5],
                    "workload.names": ["plain", "awkward"], "executor.delete_worker_pods": [True, False]}
    assert [type(v) for values in grid.values() for v in values] == [int, int, float, float, str, str, bool, bool]


@pytest.mark.parametrize("item", ["cluster.nodes", "=1,2", "cluster.nodes=", "cluster.nodes=[1"])
def test_parse_sets_rejects_a_malformed_set(item):
    with pytest.raises(ValueError, match=r"--set '.*'") as info:
        parse_sets([item])
    assert "KEY=V1,V2" in str(info.value) or "not valid YAML" in str(info.value)


def test_two_point_sweep_same_rows_with_one_or_two_processes(base):
    serial = sweep(base, GRID, workers=1)
    parallel = sweep(base, GRID, workers=2)
    assert serial == parallel
    assert [row["params"] for row in serial] == [{"workload.tasks_per_dag": 2}, {"workload.tasks_per_dag": 3}]
    assert [row["metrics"]["tasks_succeeded"] for row in serial] == [2, 3]  # each override applied
    assert all(row["passed"] and row["seed"] == 5 and row["failures"] == [] for row in serial)


def test_seed_override_reaches_every_point(base):
    rows = sweep(base, {"workload.tasks_per_dag": [2]}, workers=1, seed=11)
    assert rows[0]["seed"] == 11


def test_bad_grid_value_fails_before_any_point_runs(base):
    ran = []
    with pytest.raises(ScenarioError) as info:
        sweep(base, {"cluster.nodes": [1, 0]}, workers=1, on_row=ran.append)
    assert ran == []
    [(line, field, message)] = info.value.problems
    assert (line, field) == (None, "cluster.nodes")  # the value is not in the file: no file line
    assert "greater than or equal to 1 (got 0)" in message and "--set cluster.nodes=0" in message


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the file"):
        sweep(tmp_path / "missing.yaml", GRID, workers=1)


def test_dask_sweep_matches_the_local_run(base):
    try:
        from distributed import LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.skip(f"distributed cannot be imported ({exc}); install the dask extra to run this")
    local = sweep(base, GRID, workers=1)
    # dashboard_address ":0": a free port, so parallel test runs do not fight over 8787
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        remote = sweep(base, GRID, dask_address=cluster.scheduler_address)
    assert remote == local
