"""The kubesim command line (scenarios.cli), called in-process: exit codes, output, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.cli import main

GOOD = """\
name: cli-small
seed: 3
cluster: {nodes: 1}
workload: {dags: 1, tasks_per_dag: 3, names: plain, run_seconds: 5}
faults:
  - {at: 3, expire_watches: {}}
expect:
  all_tasks: success
  metrics:
    tasks_succeeded: {TASKS}
until: {max_virtual_seconds: 600}
"""
EXPECTATION_LINE = 10


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """`kubesim run` writes ./kubesim.log by default: not into the repository."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, tasks: int = 3, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(GOOD.replace("{TASKS}", str(tasks)), encoding="utf-8")
    return path


def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ncluster:\n  nodes: 1\n  nodse: 2\n", encoding="utf-8")
    return path


def test_validate_good_file_exits_0(tmp_path, capsys):
    path = write(tmp_path)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: ok (1 scenario)" in out and err == ""


def test_validate_bad_file_exits_2_with_file_and_line(tmp_path, capsys):
    good, bad = write(tmp_path), bad_file(tmp_path)
    assert main(["validate", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert f"{bad}:4: cluster.nodse: unknown key 'nodse'" in err
    assert f"{good}: ok" in out  # the good file is still checked


def test_run_passing_scenario_exits_0(tmp_path, capsys):
    assert main(["run", str(write(tmp_path))]) == 0
    out, _ = capsys.readouterr()
    assert "cli-small (seed 3): PASSED" in out and "tasks_succeeded" in out
    assert "replay: kubesim run" in out and "last events before the end" not in out  # no failure detail


def test_run_failing_expectation_exits_1_and_prints_the_replay_command(tmp_path, capsys):
    # a long path: the replay command and file:line must not be folded across lines
    deep = tmp_path / ("a-directory-with-a-long-name-" * 3)
    deep.mkdir()
    path = write(deep, tasks=4, name="a-scenario-file-whose-name-is-long-too.yaml")
    assert main(["run", str(path), "--seed", "8"]) == 1
    out, _ = capsys.readouterr()
    assert "FAILED" in out
    assert f"{path}:{EXPECTATION_LINE}: expect.metrics.tasks_succeeded: expected tasks_succeeded >= 4, got 3" in out
    assert f"replay: kubesim run {path} --seed 8\n" in out


def test_run_bad_file_exits_2(tmp_path, capsys):
    bad = bad_file(tmp_path)
    assert main(["run", str(bad)]) == 2
    _, err = capsys.readouterr()
    assert f"{bad}:4: cluster.nodse" in err


def test_run_unknown_variant_exits_2(tmp_path, capsys):
    assert main(["run", str(write(tmp_path)), "--variant", "nodes=9"]) == 2
    assert "no variant 'nodes=9'" in capsys.readouterr().err


def test_run_json_writes_metrics(tmp_path, capsys):
    out_file = tmp_path / "result.json"
    assert main(["run", str(write(tmp_path)), "--json", str(out_file)]) == 0
    [result] = json.loads(out_file.read_text())
    assert result["passed"] is True and result["seed"] == 3 and result["scenario"] == "cli-small"
    assert result["metrics"]["tasks_succeeded"] == 3 and result["metrics"]["watch_410s"] >= 1
    assert result["replay"].endswith("--seed 3") and result["failures"] == []


def test_run_plot_png(tmp_path, capsys):
    out_file = tmp_path / "run.png"
    assert main(["run", str(write(tmp_path)), "--plot", str(out_file)]) == 0
    assert out_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {out_file}" in capsys.readouterr().out


def test_run_plot_html_embeds_the_image(tmp_path, capsys):
    out_file = tmp_path / "run.html"
    assert main(["run", str(write(tmp_path)), "--plot", str(out_file)]) == 0
    html = out_file.read_text()
    assert html.startswith("<!doctype html>") and '<img alt="kubesim plot" src="data:image/png;base64,iVBOR' in html


def test_run_plot_with_unknown_extension_exits_2_before_running(tmp_path, capsys):
    out_file = tmp_path / "run.txt"
    assert main(["run", str(write(tmp_path)), "--plot", str(out_file)]) == 2
    out, err = capsys.readouterr()
    assert f"cannot write --plot {out_file}" in err and ".png" in err
    assert "PASSED" not in out and not out_file.exists()


def test_schema_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"cluster", "workload", "faults", "expect", "until", "matrix"} <= set(schema["properties"])
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_demo_runs_and_summarises(capsys):
    assert main(["demo", "--pods", "3", "--seed", "7"]) == 0
    out, _ = capsys.readouterr()
    assert "kubesim demo (seed 7)" in out and "│ create │ 201    │     3 │" in out
    assert "3 pods finished" in out  # every pod: none of 3 is given an image error


def test_sweep_runs_the_grid_and_writes_rows(tmp_path, capsys):
    out_file = tmp_path / "rows.json"
    argv = ["sweep", str(write(tmp_path, tasks=2)), "--set", "workload.tasks_per_dag=2,3", "--workers", "1",
            "--metric", "tasks_succeeded", "--json", str(out_file)]
    assert main(argv) == 1  # the expectation tasks_succeeded: 2 fails at the second point
    rows = json.loads(out_file.read_text())
    assert [(r["params"]["workload.tasks_per_dag"], r["passed"]) for r in rows] == [(2, True), (3, False)]
    assert "sweep of" in capsys.readouterr().out


def test_sweep_bad_set_exits_2(tmp_path, capsys):
    assert main(["sweep", str(write(tmp_path)), "--set", "cluster.nodes", "--workers", "1"]) == 2
    assert "expected KEY=V1,V2" in capsys.readouterr().err


def test_sweep_bad_value_exits_2_naming_the_set(tmp_path, capsys):
    assert main(["sweep", str(write(tmp_path)), "--set", "cluster.nodes=1,0", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "cluster.nodes: Input should be greater than or equal to 1 (got 0) (in --set cluster.nodes=0)" in err


@pytest.mark.parametrize("argv", [["run"], ["frobnicate"], ["demo", "--pods", "1"]])
def test_bad_arguments_exit_2(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    assert status == 2
    assert capsys.readouterr().err


def test_validate_verbose_shows_the_defaults_that_apply(tmp_path, capsys):
    path = tmp_path / "short.yaml"
    path.write_text("cluster: {nodes: 2}\nexpect: {all_tasks: success}\n", encoding="utf-8")
    assert main(["validate", "-v", str(path)]) == 0
    out = capsys.readouterr().out
    assert "short: defaults that apply (not set in the file):" in out
    assert "    workload: {dags: 1, tasks_per_dag: 10," in out and "run_seconds: {constant: 30}" in out
    assert "    cluster.node: {cpu: \"8\"" in out and "    until: {max_virtual_seconds: 21600}" in out
    assert "cluster.nodes" not in out and "all_tasks" not in out  # set in the file: not a default
