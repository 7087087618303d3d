"""The mutation check itself: a mutant the catalogue catches is killed, one it cannot see survives
and fails the command, and a mutant that no longer applies is a clear error (never a silent pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.cli import main
from scenarios.mutation import MUTANTS, Edit, Mutant, MutationError, apply, load_mutants, run_all

SCENARIO = """\
name: tiny
seed: 2
cluster: {nodes: 1}
workload: {dags: 1, tasks_per_dag: 3, names: plain, run_seconds: 5}
expect:
  all_tasks: success
  per_pod:
    - {verb: delete, max: 1, why: "each pod is deleted once"}
"""

DELETES_TWICE = """\
- name: deletes-twice
  behaviour: every clean-up deletes the pod twice
  guarded_by: [tiny]
  edits:
    - file: executor/cleanup.py
      find: |
                if clean_up.delete:
                    self._delete(name, namespace)
      replace: |
                if clean_up.delete:
                    self._delete(name, namespace)
                    self._delete(name, namespace)
"""

HARMLESS = """\
- name: harmless
  behaviour: a log message changes
  guarded_by: [tiny]
  edits:
    - file: executor/cleanup.py
      find: "could not clean up pod"
      replace: "failed to clean up pod"
"""


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    folder = tmp_path / "catalogue"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(SCENARIO, encoding="utf-8")
    return folder


def test_a_mutant_the_catalogue_catches_is_killed_and_one_it_cannot_see_survives(tmp_path, catalogue, capsys):
    mutants = tmp_path / "mutants.yaml"
    mutants.write_text(DELETES_TWICE + HARMLESS, encoding="utf-8")
    code = main(["mutate", "--mutants", str(mutants), "--catalogue", str(catalogue), "--workers", "2",
                 "--json", str(tmp_path / "out.json")])
    out = capsys.readouterr().out
    assert code == 1, out                                    # below 100 %: the command fails
    assert "killed  deletes-twice by tiny" in out and "SURVIVED harmless" in out
    assert "kill rate: 1/2 = 50%" in out
    # the failure reported is the check that names the behaviour it guards (the invariant "one
    # clean-up per pod" fails too, but says less)
    assert "(each pod is deleted once)" in (tmp_path / "out.json").read_text()


def test_every_project_mutant_still_applies_to_the_executor(tmp_path):
    import executor
    source = Path(executor.__file__).resolve().parent
    for mutant in load_mutants(MUTANTS):
        scratch = tmp_path / mutant.name
        (scratch / "executor").mkdir(parents=True)
        for path in source.glob("*.py"):
            (scratch / "executor" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        apply(mutant, scratch)   # raises MutationError naming the mutant when its text moved


def test_a_mutant_whose_text_moved_is_a_clear_error(tmp_path):
    (tmp_path / "executor").mkdir()
    (tmp_path / "executor" / "cleanup.py").write_text("x = 1\n", encoding="utf-8")
    mutant = Mutant(name="gone", behaviour="b", guarded_by=["tiny"],
                    edits=[Edit(file="executor/cleanup.py", find="y = 2", replace="y = 3")])
    with pytest.raises(MutationError, match="mutant gone no longer applies: its text occurs 0 times in "
                                            "executor/cleanup.py"):
        apply(mutant, tmp_path)


def test_an_unknown_guard_is_refused_before_anything_runs(catalogue):
    mutant = Mutant(name="m", behaviour="b", guarded_by=["no-such-scenario"],
                    edits=[Edit(file="executor/cleanup.py", find="a", replace="b")])
    with pytest.raises(MutationError, match="guarded_by names no catalogue scenario: no-such-scenario"):
        run_all([mutant], catalogue)


def test_a_bad_mutants_file_is_bad_input(tmp_path, capsys):
    bad = tmp_path / "mutants.yaml"
    bad.write_text("- name: Bad Name\n  behaviour: b\n", encoding="utf-8")
    assert main(["mutate", "--mutants", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "mutants.yaml: mutant 1 (Bad Name): name: String should match pattern" in out
    assert "guarded_by: Field required" in out
