"""Every code block in the README runs as written: Python blocks as scripts, the scenario YAML
through the runner, shell blocks with bash (the installed `kubesim` on the PATH, in a scratch
directory that sees the repository's scenarios/). A block that cannot run here is listed in
EXCLUDED with its reason, and the list may not go stale."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.loader import load
from scenarios.runner import describe_failure, run

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)

# The first line of each block that is not run, and why.
EXCLUDED = {
    "# the main job: install, then run the default scenario and print what happened":
        "installs the project into a fresh .venv (the suite runs inside such an install already)",
    "fakecluster/   the simulated cluster; imports nothing from executor/ or scenarios/":
        "the directory layout (text, not code)",
    "# the whole check, as CI runs it: every mutant, two at a time; exit 1 if any survives":
        "the whole mutation check takes minutes: .ci/run runs it as its own step",
    "# a real hunt: a few hundred runs on both cores, or ten minutes on a Dask cluster":
        "minutes of runs (and a Dask cluster); tests/test_explore.py runs explore on a small world",
    "# upstream's executor under test: install the extra, then the catalogue side by side with kubesim's":
        "installs Airflow (about 450 MB) into .venv-airflow; tests/test_upstream_executor.py runs the same "
        "commands where the extra is installed (CI's Airflow environment)",
}
POD_YAML = """\
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox:1.36}]
"""


def blocks() -> list[tuple[str, str, int]]:
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def block_id(block) -> str:
    language, _code, line = block
    return f"README.md:{line}:{language or 'plain'}"


def runnable() -> list:
    return [b for b in blocks() if b[1].splitlines()[0].strip() not in EXCLUDED]


def test_every_block_is_run_or_excluded_with_a_reason():
    firsts = {code.splitlines()[0].strip() for _lang, code, _line in blocks()}
    assert set(EXCLUDED) <= firsts, f"stale exclusions: {set(EXCLUDED) - firsts}"
    for language, code, line in runnable():
        assert language in ("python", "yaml", "bash"), f"README.md:{line}: a ```{language} block cannot be run"


def scratch(tmp_path: Path) -> Path:
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    (tmp_path / "pod.yaml").write_text(POD_YAML)   # the README's `kubectl create -f pod.yaml`
    return tmp_path


@pytest.mark.parametrize("block", runnable(), ids=block_id)
def test_readme_block_runs(block, tmp_path):
    language, code, line = block
    where = scratch(tmp_path)
    if language == "yaml":
        path = where / "example.yaml"
        path.write_text(code)
        for loaded in load(path):
            result = run(loaded)
            assert result.passed, describe_failure(result)
        return
    if language == "bash" and "kubectl" in code:
        from tests.serving import find_kubectl
        find_kubectl()  # skips without kubectl, except where CI requires it
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "KUBECONFIG": str(where / "no-such-kubeconfig")}
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"README.md:{line} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
