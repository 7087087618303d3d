"""``kubesim serve`` on the command line (called in-process): what it prints, the kubeconfig it
writes, how it stops, and its exit status on bad arguments."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scenarios.cli import main
from serving import kubesim_threads

MATRIX = """\
name: two-ways
cluster: {nodes: 1}
matrix:
  - {cluster.nodes: 1}
  - {cluster.nodes: 2}
"""


def test_serve_writes_a_kubeconfig_prints_how_to_use_it_and_stops_at_until(tmp_path, capsys):
    kubeconfig = tmp_path / "kube" / "config"
    kubeconfig.parent.mkdir()
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: tiny\nseed: 9\ncluster: {nodes: 2}\nfaults:\n  - {at: 5, restart_scheduler: {}}\n")
    code = main(["serve", str(scenario), "--port", "0", "--speed", "100", "--until", "10",
                 "--kubeconfig", str(kubeconfig)])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    config = yaml.safe_load(kubeconfig.read_text())
    url = config["clusters"][0]["cluster"]["server"]
    assert url.startswith("http://127.0.0.1:") and config["current-context"] == "kubesim"
    assert f"on {url} at 100x real time" in out and "scenario tiny (seed 9), 2 nodes" in out
    assert f"export KUBECONFIG={kubeconfig}" in out and "kubectl get pods -w" in out
    assert "note: skipped restart_scheduler at 5s" in out and "stopped at virtual t=" in out
    assert not kubesim_threads()


def test_a_port_in_use_is_a_clear_error_and_exit_status_2(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--kubeconfig", str(tmp_path / "k")])
    _, err = capsys.readouterr()
    assert code == 2 and err.strip() == f"kubesim serve: cannot listen on 127.0.0.1:{port}: address already in use"
    assert not (tmp_path / "k").exists()


def test_bad_speed_port_or_variant_are_refused_with_exit_status_2(tmp_path, capsys):
    assert main(["serve", "--speed", "0", "--port", "0"]) == 2
    assert "--speed must be a number > 0" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    assert main(["serve", str(matrix), "--port", "0"]) == 2
    assert "several variants: pick one with --variant" in capsys.readouterr().err


def default_sigint() -> None:
    """Ctrl-C as a terminal gives it. Under a shell's background job (``pytest &``, CI runners)
    SIGINT is inherited as ignored, and a Python started so never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_runs_until_ctrl_c_or_sigterm_then_stops_cleanly(tmp_path, stop):
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-m", "scenarios.cli", "serve", "--port", "0",
                                "--kubeconfig", str(tmp_path / "k")], cwd=root, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONPATH": str(root)}, preexec_fn=default_sigint)
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        assert lines[-1].strip() == "serving until Ctrl-C", lines
        process.send_signal(stop)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0 and "kubesim serve: stopped at virtual t=" in out
