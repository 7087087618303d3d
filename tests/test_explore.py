"""kubesim explore: randomized fault schedules find a known upstream bug put back into the
executor, shrink it to a minimal scenario that replays, and draw the same on the same seed."""

from __future__ import annotations

from pathlib import Path

import pytest

import scenarios.world
from executor import KubernetesExecutor
from scenarios.cli import main
from scenarios.explore import merge, plan, run_shard, write_finding
from scenarios.loader import load
from scenarios.runner import run

WORLD = """\
name: small-world
seed: 1
cluster: {nodes: 2}
executor: {worker_pods_creation_batch_size: 4}
workload: {dags: 1, tasks_per_dag: 4, names: plain, run_seconds: {uniform: [5, 20]}}
explore:
  kinds: [expire_watches, stall_watches, api_errors, crash_scheduler]
  horizon: 60
  max_faults: 3
"""


class DeletesBeforeDedup(KubernetesExecutor):
    """Upstream's order (#72803): a pod is deleted on every terminal event, before the executor
    checks whether it has seen that pod's end already."""

    def _on_terminal(self, key, event, state, reason):
        if event.event_type != "DELETED":
            self._started().delete(event.pod_name, event.namespace)
        super()._on_terminal(key, event, state, reason)


@pytest.fixture
def world_file(tmp_path: Path) -> Path:
    path = tmp_path / "world.yaml"
    path.write_text(WORLD, encoding="utf-8")
    return path


def test_explore_finds_a_known_upstream_bug_and_shrinks_it_to_a_replayable_scenario(world_file, tmp_path,
                                                                                      monkeypatch):
    the_plan = plan(world_file, world_file.read_text(), seed=3, kinds=None, expectations=False)
    monkeypatch.setattr(scenarios.world, "KubernetesExecutor", DeletesBeforeDedup)
    shard = run_shard(the_plan, 0)                      # one shard: ten draws, then shrinking
    (finding,) = merge(shard.findings)
    assert finding.invariant == "one clean-up per pod" and finding.faults <= 2
    assert finding.scenario["workload"]["tasks_per_dag"] == 1 and finding.scenario["cluster"]["nodes"] == 1

    written = write_finding(finding, tmp_path / "found", the_plan)
    text = written.read_text()
    assert text.startswith("# Found by kubesim explore") and "--seed 3" in text and "one clean-up per pod" in text
    [loaded] = load(written)                             # the shrunk file validates ...
    assert any(f.check == "one clean-up per pod" for f in run(loaded).failures)   # ... and fails again
    monkeypatch.setattr(scenarios.world, "KubernetesExecutor", KubernetesExecutor)
    assert run(loaded).passed                            # the real executor passes it


def test_the_same_seed_draws_the_same_schedules_and_findings(world_file, monkeypatch):
    monkeypatch.setattr(scenarios.world, "KubernetesExecutor", DeletesBeforeDedup)
    the_plan = plan(world_file, world_file.read_text(), seed=5, kinds=None, expectations=False)
    first, second = run_shard(the_plan, 1), run_shard(the_plan, 1)
    assert first.runs == second.runs
    assert [f.scenario for f in first.findings] == [f.scenario for f in second.findings] != []


def test_kubesim_explore_exits_0_when_nothing_breaks_and_says_so(world_file, tmp_path, capsys):
    code = main(["explore", str(world_file), "--runs", "10", "--workers", "1", "--seed", "2",
                 "--out", str(tmp_path / "out"), "--json", str(tmp_path / "found.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "10 runs" in out and "no invariant broke" in out
    assert '"findings": []' in (tmp_path / "found.json").read_text()


@pytest.mark.parametrize("args, message", [
    (["--time", "soon"], "--time 'soon': expected a duration such as 90s, 10m or 1h"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--kinds", "meteor_strike"], "unknown fault kind(s) meteor_strike"),
])
def test_bad_explore_input_is_exit_2_with_the_reason(world_file, args, message, capsys):
    assert main(["explore", str(world_file), *args]) == 2
    assert message in capsys.readouterr().out.replace("\n", "")


def test_explore_on_dask_finds_what_it_finds_on_local_processes(world_file):
    """The same shards on a Dask cluster (the plan carries the file's text, not its path): the
    same runs and the same verdicts as on local processes."""
    try:
        from distributed import LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.skip(f"distributed cannot be imported ({exc}); install the dask extra to run this")
    from rich.console import Console

    from scenarios.explore_cli import run_shards

    the_plan = plan(world_file, world_file.read_text(), seed=4, kinds=None, expectations=False)
    quiet = Console(quiet=True)
    local = run_shards(the_plan, 2, None, 1, None, quiet)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        remote = run_shards(the_plan, 2, None, 1, cluster.scheduler_address, quiet)
    assert [(r.shard, r.runs, [f.scenario for f in r.findings]) for r in remote] == \
           [(r.shard, r.runs, [f.scenario for f in r.findings]) for r in local]
    assert sum(r.runs for r in local) >= 20
