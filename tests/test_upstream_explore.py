"""kubesim explore against upstream Airflow's unmodified executor (marked airflow: needs the
extra): the randomized schedules find its real bugs, and each finding replays on that executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.loader import load
from scenarios.pytest_plugin import require_airflow
from scenarios.runner import run

pytestmark = pytest.mark.airflow

WORLD = """\
name: small-world
seed: 1
cluster: {nodes: 1}
executor: {worker_pods_creation_batch_size: 2}
workload: {dags: 1, tasks_per_dag: 2, names: plain, run_seconds: 5}
explore: {kinds: [expire_watches], horizon: 30, max_faults: 1}
"""


def test_explore_finds_upstreams_double_delete_and_the_finding_replays_on_upstream(tmp_path: Path, capsys):
    require_airflow()
    world = tmp_path / "world.yaml"
    world.write_text(WORLD, encoding="utf-8")
    found = tmp_path / "found"
    code = main(["explore", str(world), "--executor", "airflow", "--runs", "10", "--workers", "2",
                 "--seed", "3", "--out", str(found)])
    assert code == 1, capsys.readouterr().out
    assert "with upstream Airflow's executor" in capsys.readouterr().out
    written = sorted(found.glob("*one-clean-up-per-pod*.yaml"))
    assert written, sorted(p.name for p in found.iterdir())
    [loaded] = load(written[0])
    assert loaded.scenario.under_test == "airflow"          # the finding names the executor it broke
    assert any(f.check == "one clean-up per pod" for f in run(loaded).failures)   # and breaks it again
