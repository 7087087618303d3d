"""The mutation check: does the catalogue fail when an upstream bug comes back?

Each mutant in ``scenarios/mutants.yaml`` puts one upstream behaviour back into a scratch copy of
``executor/`` (a few exact text edits, never a switch inside the executor). ``kubesim mutate``
runs the catalogue against each mutant in a fresh process, the scenarios that claim to guard it
first, and reports which scenario killed it and why; a mutant that survives every scenario means
the catalogue would let that bug back in unnoticed. Exit status 1 below a 100 % kill rate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import executor as executor_package

MUTANTS = Path(__file__).with_name("mutants.yaml")
CATALOGUE = Path(__file__).with_name("catalogue")
PACKAGES = ("fakecluster", "scenarios")   # shared with the scratch copy as they are


class MutationError(ValueError):
    """A mutants file that cannot be used; the message says which mutant and how to fix it."""


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str = Field(description="a path under executor/, e.g. executor/watcher.py")
    find: str = Field(min_length=1, description="text that occurs exactly once in that file")
    replace: str


class Mutant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    behaviour: str = Field(description="the upstream behaviour it puts back")
    guarded_by: list[str] = Field(min_length=1, description="catalogue scenario names expected to kill it")
    edits: list[Edit] = Field(min_length=1)


@dataclass
class Outcome:
    mutant: Mutant
    killed_by: str | None = None
    failure: str = ""
    scenarios_run: int = 0
    seconds: float = 0.0
    error: str = ""
    runs: list = field(default_factory=list)
    other_seeds: dict = field(default_factory=dict)   # seed -> killed there too

    @property
    def killed(self) -> bool:
        return self.killed_by is not None


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise MutationError(f"{path}: cannot read the mutants: {exc}") from exc
    if not isinstance(raw, list):
        raise MutationError(f"{path}: expected a list of mutants (- name: ...), got {type(raw).__name__}")
    mutants = []
    for number, entry in enumerate(raw, 1):
        try:
            mutants.append(Mutant.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("name", "?") if isinstance(entry, dict) else "?"
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise MutationError(f"{path}: mutant {number} ({name}): {problems}") from exc
    names = [m.name for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MutationError(f"{path}: mutant names must be unique; repeated: {', '.join(duplicates)}")
    return mutants


def scenario_files(catalogue: Path) -> dict[str, Path]:
    """Scenario name -> file, for every file in the catalogue (its ``name:`` or its stem)."""
    found = {}
    for path in sorted(catalogue.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "scale" in (raw.get("markers") or []):
            continue   # opt-in scale runs are no regression guard
        found[str(raw.get("name") or path.stem)] = path
    return found


def apply(mutant: Mutant, root: Path) -> None:
    """Apply the mutant's edits to the executor copy under ``root``."""
    for edit in mutant.edits:
        path = root / edit.file
        if not edit.file.startswith("executor/") or not path.is_file():
            raise MutationError(f"mutant {mutant.name}: {edit.file} is no file under executor/")
        text = path.read_text(encoding="utf-8")
        found = [(find, replace) for find, replace in placements(edit) if find in text]
        count = sum(text.count(find) for find, _ in found)
        if count != 1:
            raise MutationError(f"mutant {mutant.name} no longer applies: its text occurs {count} times in "
                                f"{edit.file} (it must occur once); the code it changes has moved, so update "
                                f"the mutant's 'find' to match the code that now holds that behaviour")
        path.write_text(text.replace(*found[0]), encoding="utf-8")


def placements(edit: Edit) -> list[tuple[str, str]]:
    """The edit's text as written, or, for whole lines (a YAML block, ending in a newline), those
    lines at every indentation: a YAML block loses the code's own indentation, and the
    replacement takes the indentation the lines had."""
    if not edit.find.endswith("\n"):
        return [(edit.find, edit.replace)]
    find, replace = textwrap.dedent(edit.find), textwrap.dedent(edit.replace)
    return [("\n" + textwrap.indent(find, " " * n), "\n" + textwrap.indent(replace, " " * n))
            for n in range(0, 41, 4)]


def scratch_tree(mutant: Mutant, into: Path) -> Path:
    """A tree with a mutated copy of executor/ and the other packages linked as they are."""
    source = Path(executor_package.__file__).resolve().parent
    shutil.copytree(source, into / "executor", ignore=shutil.ignore_patterns("__pycache__"))
    for name in PACKAGES:
        (into / name).symlink_to(source.parent / name, target_is_directory=True)
    apply(mutant, into)
    return into


def order(mutant: Mutant, files: dict[str, Path]) -> list[Path]:
    unknown = [name for name in mutant.guarded_by if name not in files]
    if unknown:
        raise MutationError(f"mutant {mutant.name}: guarded_by names no catalogue scenario: {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(files))})")
    guards = [files[name] for name in mutant.guarded_by]
    return guards + [path for path in files.values() if path not in guards]


def run_mutant(mutant: Mutant, files: dict[str, Path], every_scenario: bool = False,
               seeds: tuple[int, ...] = ()) -> Outcome:
    started = time.perf_counter()
    outcome = Outcome(mutant)
    with tempfile.TemporaryDirectory(prefix=f"kubesim-mutant-{mutant.name}-") as scratch:
        try:
            root = scratch_tree(mutant, Path(scratch))
        except MutationError as exc:
            outcome.error = str(exc)
            return outcome
        command = [sys.executable, "-m", "scenarios.mutation_worker", *map(str, order(mutant, files))]
        if not every_scenario:
            command.insert(3, "--first-kill")
        if seeds:
            command.insert(3, "--seeds=" + ",".join(map(str, seeds)))
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    outcome.seconds = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            outcome.runs.append(json.loads(line))
    outcome.scenarios_run = len([run for run in outcome.runs if run.get("seed") is None])
    killer = next((run for run in outcome.runs if not run["passed"] and run.get("seed") is None), None)
    if killer is not None:
        outcome.killed_by, outcome.failure = killer["scenario"], killer["failure"]
        outcome.other_seeds = {run["seed"]: not run["passed"] for run in outcome.runs
                               if run.get("seed") is not None and run["scenario"] == killer["scenario"]}
    elif done.returncode != 0:
        outcome.error = (done.stderr.strip().splitlines() or ["the worker failed"])[-1]
    return outcome


def run_all(mutants: list[Mutant], catalogue: Path = CATALOGUE, workers: int = 2, every_scenario: bool = False,
            on_done=None, seeds: tuple[int, ...] = ()) -> list[Outcome]:
    files = scenario_files(catalogue)
    for mutant in mutants:
        order(mutant, files)   # bad guarded_by names fail before anything runs
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run_mutant, mutant, files, every_scenario, seeds) for mutant in mutants]
        outcomes = []
        for future in futures:
            outcomes.append(future.result())
            if on_done is not None:
                on_done(outcomes[-1])
    return outcomes
