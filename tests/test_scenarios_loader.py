"""Scenario files in, validated scenarios or a precise ScenarioError out (scenarios.loader)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest
import yaml

from executor.config import ConfigError, ExecutorConfig
from scenarios.loader import ScenarioError, load
from scenarios.schema import Scenario, json_schema

CATALOGUE = Path(__file__).resolve().parent.parent / "scenarios" / "catalogue"


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load(path)
    return info.value


def assert_problem(error: ScenarioError, path: Path, line: int | None, field: str, *fragments: str) -> None:
    """Exactly one problem, at ``line`` and ``field``, shown as file:line in the message."""
    assert len(error.problems) == 1, error.problems
    got_line, got_field, message = error.problems[0]
    assert (got_line, got_field) == (line, field), error.problems
    for fragment in fragments:
        assert fragment in message, message
    text = str(error)
    assert f"{path}:{line}: {field}" in text if line else str(path) in text, text


# -- bad files -----------------------------------------------------------------------------------

def test_unknown_key_is_reported_at_its_own_line(tmp_path):
    path = write(tmp_path, "name: typo\nseed: 1\ncluster:\n  nodes: 2\n  nodse: 3\nworkload: {dags: 1}\n")
    assert_problem(load_error(path), path, 5, "cluster.nodse", "unknown key 'nodse'", "did you mean 'nodes'?")


def test_wrong_type_names_the_field_and_the_value(tmp_path):
    path = write(tmp_path, "cluster:\n  nodes: many\n")
    assert_problem(load_error(path), path, 2, "cluster.nodes", "valid integer", "'many'")


@pytest.mark.parametrize("text, line, field, expected", [
    ("cluster:\n  nodes: 0\n", 2, "cluster.nodes", "greater than or equal to 1 (got 0)"),
    ("workload:\n  dags: 1\n  failure_probability: 1.5\n", 3, "workload.failure_probability",
     "less than or equal to 1 (got 1.5)"),
    ("faults:\n  - api_errors: {code: 500}\n  - outage:\n      start: 100\n      end: 50\n", 3, "faults[1].outage",
     "outage end (50.0) must come after its start (100.0)"),
    ("workload:\n  run_seconds:\n    uniform: [10, 5]\n", 2, "workload.run_seconds",
     "uniform needs [low, high] with 0 <= low <= high"),
], ids=["nodes-0", "probability-1.5", "outage-end-before-start", "uniform-low-above-high"])
def test_impossible_value_says_what_is_expected(tmp_path, text, line, field, expected):
    path = write(tmp_path, text)
    assert_problem(load_error(path), path, line, field, expected)


@pytest.mark.parametrize("fault, expected", [
    ("{at: 10}", "exactly one action of expire_watches"),
    ("{at: 10, expire_watches: {}, drop_watches: {}}", "(got expire_watches, drop_watches)"),
    ("{expire_watches: {}}", "expire_watches needs 'at'"),
], ids=["no-action", "two-actions", "timed-without-at"])
def test_bad_fault_is_reported_at_its_entry(tmp_path, fault, expected):
    path = write(tmp_path, f"faults:\n  - {{at: 5, drop_watches: {{}}}}\n  - {fault}\n")
    assert_problem(load_error(path), path, 3, "faults[1]", expected)


def test_unknown_metric_in_expect_points_at_the_metric(tmp_path):
    path = write(tmp_path, "expect:\n  all_tasks: success\n  metrics:\n    makespan: {max: 10}\n    makespam: {max: 3}\n")
    assert_problem(load_error(path), path, 5, "expect.metrics.makespam",
                   "unknown metric makespam", "known: makespan, throughput")


def test_bad_executor_option_carries_executor_config_message(tmp_path):
    path = write(tmp_path, "name: x\nexecutor:\n  parallelism: 4\n  worker_pods_creation_batch_size: -3\n")
    with pytest.raises(ConfigError) as direct:
        ExecutorConfig.from_mapping({"parallelism": 4, "worker_pods_creation_batch_size": -3})
    error = load_error(path)
    assert_problem(error, path, 4, "executor.worker_pods_creation_batch_size")
    assert str(direct.value) in error.problems[0][2]  # ExecutorConfig's own words: problem, expected, fix


def test_yaml_syntax_error_names_where_the_unclosed_construct_began(tmp_path):
    path = write(tmp_path, "name: x\ncluster:\n  nodes: [1, 2\nworkload: {}\n")
    error = load_error(path)
    line, field, message = error.problems[0]
    assert (line, field) == (3, "")   # the unclosed [ is on line 3; the parser gives up on line 4
    assert message.startswith("YAML syntax error: the flow sequence begun on line 3, column 10 is not closed")
    assert "stopped at line 4" in message and "closing bracket" in message
    assert f"{path}:3: YAML syntax error" in str(error)


def test_yaml_syntax_error_without_an_open_construct_gives_the_line(tmp_path):
    path = write(tmp_path, "name: x\n\tcluster: {}\n")
    line, field, message = load_error(path).problems[0]
    assert (line, field) == (2, "") and "line 2, column 1" in message and "indentation" in message


def test_non_mapping_document_is_rejected(tmp_path):
    path = write(tmp_path, "- cluster\n- workload\n")
    assert_problem(load_error(path), path, 1, "", "a scenario is a mapping of sections", "not a list")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_file_is_an_error_not_ten_default_tasks(tmp_path, text):
    path = write(tmp_path, text, name="nothing.yaml")
    assert_problem(load_error(path), path, None, "", "the file is empty", "workload:", "validate -v")


@pytest.mark.parametrize("text, line, field, guess", [
    ("workloads: {dags: 1}\n", 1, "workloads", "did you mean 'workload'?"),
    ("cluster:\n  nodse: 2\n", 2, "cluster.nodse", "did you mean 'nodes'?"),
    ("cluster:\n  node: {cpus: '2'}\n", 2, "cluster.node.cpus", "did you mean 'cpu'?"),
    ("cluster:\n  api_latency:\n    create: {constnt: 0.1}\n", 3, "cluster.api_latency.create.constnt",
     "did you mean 'constant'?"),
    ("workload:\n  task_per_dag: 3\n", 2, "workload.task_per_dag", "did you mean 'tasks_per_dag'?"),
    ("workload:\n  names: realstic\n", 2, "workload.names", "did you mean 'realistic'?"),
    ("faults:\n  - {at: 5, expire_watch: {}}\n", 2, "faults[0].expire_watch", "did you mean 'expire_watches'?"),
    ("faults:\n  - outage: {start: 1, end: 5, mod: refused}\n", 2, "faults[0].outage.mod", "did you mean 'mode'?"),
    ("faults:\n  - api_errors: {code: 429, verbs: [crate]}\n", 2, "faults[0].api_errors.verbs[0]",
     "did you mean 'create'?"),
    ("expect:\n  metrics:\n    makespam: 3\n", 3, "expect.metrics.makespam", "did you mean makespan?"),
    ("expect:\n  all_task: success\n", 2, "expect.all_task", "did you mean 'all_tasks'?"),
    ("scheduler: {loop_intervall: 2}\n", 1, "scheduler.loop_intervall", "did you mean 'loop_interval'?"),
    ("until:\n  max_virtual_second: 10\n", 2, "until.max_virtual_second", "did you mean 'max_virtual_seconds'?"),
], ids=lambda v: v if isinstance(v, str) and "\n" not in v and " " not in v else None)
def test_typos_get_a_did_you_mean_in_every_section(tmp_path, text, line, field, guess):
    path = write(tmp_path, text)
    assert_problem(load_error(path), path, line, field, guess)


def test_unreadable_path_is_a_scenario_error(tmp_path):
    missing = tmp_path / "missing.yaml"
    assert_problem(load_error(missing), missing, None, "", "cannot read the file", "No such file")
    assert_problem(load_error(tmp_path), tmp_path, None, "", "cannot read the file")  # a directory


# -- matrix ----------------------------------------------------------------------------------------

MATRIX = """\
name: grid
cluster:
  nodes: 2
workload: {dags: 1, tasks_per_dag: 2, names: plain}
expect:
  all_tasks: success
matrix:
  - {cluster.nodes: 1, "expect.metrics": {makespan: {max: 100}}}
  - {cluster.nodes: 4, workload.tasks_per_dag: 5}
  - {executor.worker_pods_creation_batch_size: 8}
"""


def test_matrix_expands_to_one_scenario_per_entry_named_by_what_it_varies(tmp_path):
    path = write(tmp_path, MATRIX)
    variants = load(path)
    assert [v.id for v in variants] == ["grid[nodes=1]", "grid[nodes=4,tasks_per_dag=5]",
                                        "grid[worker_pods_creation_batch_size=8]"]
    first, second, third = (v.scenario for v in variants)
    assert (first.cluster.nodes, first.workload.tasks_per_dag) == (1, 2)
    assert first.expect.metrics["makespan"].max == 100 and first.expect.all_tasks == "success"
    assert (second.cluster.nodes, second.workload.tasks_per_dag, second.expect.metrics) == (4, 5, {})
    assert (third.cluster.nodes, third.executor) == (2, {"worker_pods_creation_batch_size": 8})
    assert all(v.scenario.matrix == [] for v in variants)
    # an expectation a variant brings is located on the variant's own line
    assert variants[0].line_of("expect", "metrics", "makespan") == 8
    assert variants[1].line_of("expect", "all_tasks") == 6


def test_matrix_entries_that_only_set_sections_still_get_distinct_ids(tmp_path):
    path = write(tmp_path, "name: grid\nmatrix:\n  - {expect.metrics: {tasks_succeeded: 1}}\n"
                           "  - {expect.metrics: {tasks_succeeded: 2}}\n")
    assert [v.id for v in load(path)] == ["grid[0]", "grid[1]"]


def test_bad_value_in_a_matrix_entry_points_at_that_entry(tmp_path):
    path = write(tmp_path, "name: grid\ncluster:\n  nodes: 2\nmatrix:\n  - {cluster.nodes: 1}\n  - {cluster.nodes: 0}\n")
    assert_problem(load_error(path), path, 6, "cluster.nodes", "greater than or equal to 1", "(in matrix[1])")


def test_matrix_key_through_a_value_is_a_scenario_error(tmp_path):
    path = write(tmp_path, "cluster:\n  nodes: 2\nmatrix:\n  - {cluster.nodes.count: 1}\n")
    assert_problem(load_error(path), path, 4, "matrix[0]", "nodes is not a section")


# -- JSON Schema -----------------------------------------------------------------------------------

def test_exported_json_schema_accepts_the_catalogue_and_rejects_a_typo():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed: the exported "
                                     "schema cannot be checked against the catalogue here")
    schema = json_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    files = sorted(glob.glob(os.path.join(CATALOGUE, "*.yaml")))
    assert len(files) >= 10
    for file in files:
        document = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == [], f"{file}: {errors}"
    bad = [e.message for e in validator.iter_errors({"cluster": {"nodse": 1},
                                                      "expect": {"metrics": {"makespam": 1}}})]
    assert any("nodse" in m for m in bad) and any("makespam" in m for m in bad), bad
