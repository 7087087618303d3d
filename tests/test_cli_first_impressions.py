"""First impressions of the command line, each once a defect: markup eating variant labels,
outputs into missing directories, the until cut-off, crashed processes, sweeps."""

from __future__ import annotations

import os
import socket
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.loader import load
from scenarios.sweep import run_point

ROOT = Path(__file__).resolve().parent.parent
SMALL = """\
name: small
seed: 3
cluster: {nodes: 1}
workload: {dags: 1, tasks_per_dag: 3, names: plain, run_seconds: 5}
expect: {all_tasks: success}
until: {max_virtual_seconds: 600}
"""


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str = SMALL, name: str = "small.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_matrix_labels_survive_in_titles_and_output_lines(tmp_path, capsys):
    path = write(tmp_path, SMALL + "matrix:\n  - {cluster.nodes: 1}\n  - {cluster.nodes: 2}\n")
    out_file = tmp_path / "out[x=1].json"
    assert main(["run", str(path), "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "small[nodes=1] (seed 3): PASSED" in out and "small[nodes=2] (seed 3): PASSED" in out
    assert f"JSON: {out_file}" in out and "--variant nodes=2" in out


@pytest.mark.parametrize("option, name", [("--json", "out.json"), ("--plot", "run.png"),
                                          ("--report", "report.html"), ("--log", "run.log")])
def test_an_output_into_a_missing_directory_fails_before_the_run(tmp_path, capsys, option, name):
    target = tmp_path / "no-such-dir" / name
    assert main(["run", str(write(tmp_path)), option, str(target)]) == 2
    out, err = capsys.readouterr()
    assert f"cannot write {option} {target}" in err and "does not exist" in err
    assert "PASSED" not in out and not (tmp_path / "kubesim.log").exists()


def test_sweep_json_into_a_missing_directory_fails_before_the_sweep(tmp_path, capsys):
    target = tmp_path / "missing" / "rows.json"
    argv = ["sweep", str(write(tmp_path)), "--set", "cluster.nodes=1,2", "--workers", "1", "--json", str(target)]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err


def test_hitting_until_is_a_clean_failure_with_the_metrics_up_to_the_cut_off(tmp_path, capsys):
    path = write(tmp_path, SMALL.replace("max_virtual_seconds: 600", "max_virtual_seconds: 3"))
    assert main(["run", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "crashed" not in out + err
    assert "until.max_virtual_seconds" in out and "cut off at 3.0s" in out
    assert "not judged: the run was cut off" in out
    assert "pods_created" in out and "│                  3 │" not in out  # a metrics table with rows
    assert re.search(r"│ pods_created\s+│\s+3 │", out)


CRASHING_RUN = """
import sys
import executor.scheduler_job
from scenarios.cli import main

def broken(self):
    raise RuntimeError("scheduler loop broke")

executor.scheduler_job.SchedulerJob._queue_scheduled = broken  # a harness bug, injected
sys.exit(main(["run", sys.argv[1]]))
"""


def test_a_crashed_process_ends_kubesim_run_with_exit_1_and_one_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(write(tmp_path))], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert output.count("Traceback (most recent call last)") == 1, output
    assert "RuntimeError: scheduler loop broke" in output and "no process crashed" in output
    assert "crashed at virtual time" in (tmp_path / "kubesim.log").read_text()  # the kernel's note: in the log


def test_sweep_refuses_zero_workers(tmp_path, capsys):
    assert main(["sweep", str(write(tmp_path)), "--set", "cluster.nodes=1,2", "--workers", "0"]) == 2
    assert "--workers must be at least 1, not 0" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sweep_on_an_unreachable_dask_scheduler_says_so_quickly(tmp_path, capsys):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    argv = ["sweep", str(write(tmp_path)), "--set", "cluster.nodes=1,2", "--dask", address, "--dask-timeout", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at {address} within 2 s" in err and "Traceback" not in err


def test_a_sweep_point_carries_the_file_text_not_its_path(tmp_path):
    path = write(tmp_path)
    text = path.read_text()
    path.unlink()  # a remote worker has no such file: the point must not need it
    [row] = run_point(str(path), text, {"workload.tasks_per_dag": 2}, None)
    assert row["passed"] and row["metrics"]["tasks_succeeded"] == 2


def test_a_sweep_keeps_the_files_matrix_variants_and_their_expectations(tmp_path, capsys):
    path = write(tmp_path, SMALL + "matrix:\n"
                 "  - {cluster.nodes: 1, \"expect.metrics\": {tasks_succeeded: 2}}\n"
                 "  - {cluster.nodes: 2}\n")
    argv = ["sweep", str(path), "--set", "workload.tasks_per_dag=2,3", "--workers", "1",
            "--metric", "tasks_succeeded", "--json", str(tmp_path / "rows.json")]
    assert main(argv) == 1   # the first variant expects 2 tasks: it fails at the point with 3
    out = capsys.readouterr().out
    import json
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [(r["variant"], r["params"]["workload.tasks_per_dag"], r["passed"]) for r in rows] == [
        ("nodes=1", 2, True), ("nodes=2", 2, True), ("nodes=1", 3, False), ("nodes=2", 3, True)]
    assert "2 points x 2 variants" in " ".join(out.split()) and "  1 = nodes=1" in out


def test_sweep_table_headers_stay_whole_words_in_80_columns(tmp_path, capsys):
    argv = ["sweep", str(write(tmp_path)), "--set", "executor.worker_pods_creation_batch_size=1,8",
            "--set", "cluster.api_latency.create.constant=0.01,0.2", "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    words = set(out.replace("┃", " ").replace("│", " ").split())
    assert {"worker", "pods", "creation", "batch", "size", "constant", "makespan", "throughput"} <= words
    assert "worker pods creation batch size = executor.worker_pods_creation_batch_size" in out.replace("\n", " ")
