"""The catalogue side by side, as the README shows it: the known upstream bugs on upstream's
executor, not on kubesim's (marked airflow: needs the extra). A sample of the catalogue, each
scenario chosen for the bug it shows; `kubesim compare scenarios/catalogue/*.yaml` runs them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.compare import compare
from scenarios.pytest_plugin import require_airflow

pytestmark = pytest.mark.airflow
CATALOGUE = Path(__file__).resolve().parent.parent / "scenarios" / "catalogue"
SAMPLE = ("default", "watch_410_storm", "idle_read_timeouts", "lost_create_answers", "throttling_429",
          "adoption_transient", "api_outage", "awkward_names")


@pytest.fixture(scope="module")
def rows():
    require_airflow()
    found = compare([CATALOGUE / f"{name}.yaml" for name in SAMPLE], ["kubesim", "airflow"])
    return {(row.scenario, row.executor): row for row in found}


def test_kubesim_breaks_no_invariant_on_the_sample(rows):
    ours = [row for (_scenario, executor), row in rows.items() if executor == "kubesim"]
    assert len(ours) == 9 and all(row.violations == {} and not row.error for row in ours)


def test_upstream_deletes_every_succeeded_pod_twice(rows):
    row = rows["default", "airflow"]
    assert row.violations == {"one clean-up per pod": 60}
    assert row.api_errors == {"delete 404": 60} and row.deletes_per_pod == {"max": 2, "mean": 2.0}


def test_upstreams_watcher_dies_on_each_410_and_replays_from_0(rows):
    ours, theirs = rows["watch-410-storm", "kubesim"], rows["watch-410-storm", "airflow"]
    assert ours.metrics["watcher_deaths"] == 0 and ours.metrics["watch_resumes_from_0"] == 0
    assert theirs.metrics["watcher_deaths"] == theirs.metrics["watch_410s"] > 0
    assert theirs.metrics["watch_resumes_from_0"] == theirs.metrics["watcher_deaths"] + 1


def test_upstreams_idle_watch_resumes_from_0_and_keeps_failed_pods(rows):
    row = rows["idle-read-timeouts", "airflow"]
    assert row.metrics["watch_resumes_from_0"] > row.metrics["watcher_deaths"] + 1
    assert "no orphan pods" in row.violations


def test_a_lost_create_answer_starts_a_second_pod_on_upstream(rows):
    row = rows["lost-create-answers[task_publish_max_retries=5]", "airflow"]
    assert row.violations["one live pod per try"] > 0 and row.violations["one running copy per task instance"] > 0


def test_throttling_fails_upstreams_tasks(rows):
    assert rows["throttling-429", "kubesim"].metrics["tasks_failed"] == 0
    assert rows["throttling-429", "airflow"].metrics["tasks_failed"] > 0


def test_a_transient_adoption_error_runs_a_task_twice_on_upstream(rows):
    assert rows["adoption-transient-errors", "airflow"].violations["one running copy per task instance"] > 0


def test_upstream_spins_in_an_api_outage_and_awkward_ids_do_not_run(rows):
    assert rows["api-outage", "airflow"].violations["progress"] == 1
    assert rows["api-outage", "airflow"].api_errors == {"delete 503": 10_001}
    assert "Airflow cannot hold DAG" in rows["awkward-names", "airflow"].error
