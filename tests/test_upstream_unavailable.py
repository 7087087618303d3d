"""Without the airflow extra kubesim runs as before, and asking for upstream's executor is a clear
error before anything runs (exit status 2), not a traceback. Skipped where Airflow is installed."""

from __future__ import annotations

import pytest

from scenarios.cli import main
from scenarios.upstream import unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is None, reason="Airflow is installed here")

DEFAULT = "scenarios/catalogue/default.yaml"


@pytest.mark.parametrize("argv", [["run", DEFAULT, "--executor", "airflow"],
                                  ["compare", DEFAULT],
                                  ["compare", DEFAULT, "--executor", "airflow"],
                                  ["explore", DEFAULT, "--executor", "airflow", "--runs", "10"]])
def test_asking_for_upstreams_executor_without_airflow_is_bad_input(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Airflow's KubernetesExecutor is not installed" in err
    assert "pip install -c constraints-airflow.txt -e '.[airflow]'" in err


def test_compare_with_kubesim_alone_needs_no_airflow(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main(["compare", DEFAULT, "--executor", "kubesim", "--json", str(out)]) == 0
    assert '"executor": "kubesim"' in out.read_text()
    assert "invariant violations" in capsys.readouterr().out
