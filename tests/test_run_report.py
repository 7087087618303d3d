"""The run report: the fault timeline with the executor's reactions, checks, metrics with units,
API calls, times, outputs; quiet passing runs; progress; the metric glossary."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from scenarios import invariants
from scenarios.cli import main
from scenarios.glossary import GLOSSARY, glossary_markdown
from scenarios.loader import load
from scenarios.plots import WINDOW_ALPHA, run_figure
from scenarios.progress import run_with_progress
from scenarios.runner import run
from scenarios.schema import METRICS

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "scenarios" / "catalogue"


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def catalogue(name: str, variant: int = 0):
    return load(CATALOGUE / f"{name}.yaml")[variant]


def test_every_strike_of_a_repeating_fault_is_on_the_timeline_with_what_the_executor_did():
    result = run(catalogue("watch_410_storm"))
    storms = [e for e in result.faults if e.action == "expire_watches"]
    assert [e.start for e in storms] == [30.0 * i for i in range(1, len(storms) + 1)]
    assert len(storms) >= 5 and len(storms) == len([t for t in range(30, 601, 30) if t <= result.virtual_seconds])
    for storm in storms:
        assert storm.detail == "1 watch expired"
        assert any("re-listing" in r for r in storm.reactions), storm.reactions
    for storm in storms[:-1]:  # the last may strike while the run ends, before a re-list
        assert any(re.search(r"watching from resourceVersion \d+", r) for r in storm.reactions), storm.reactions


def test_windows_are_recorded_and_shaded_and_strikes_marked():
    result = run(catalogue("api_outage"))
    windows = [(e.start, e.end, e.label) for e in result.faults if e.window]
    assert windows == [(15, 75, "API outage (503)"), (75, 105, "API outage (connections refused)")]
    outage = result.faults[0]
    assert any("re-queueing" in r for r in outage.reactions)
    assert any(r.startswith("API answers that were not a success: 503 x") for r in outage.reactions)
    figure = run_figure(result)
    pods_ax = figure.axes[0]
    shaded = [p for p in pods_ax.patches if p.get_alpha() == WINDOW_ALPHA]
    assert len(shaded) == 2
    storm = run_figure(run(catalogue("watch_410_storm")))
    marks = [line for line in storm.axes[0].lines if line.get_linestyle() == ":"]
    assert len(marks) >= 5  # one per strike, not one for all


def test_a_scheduler_restart_says_what_the_successor_adopted_and_reset():
    result = run(catalogue("scheduler_restart"))
    [restart] = [e for e in result.faults if e.action == "restart_scheduler"]
    assert any(re.search(r"scheduler 2 adopted \d+ of \d+ orphaned tries of dead schedulers, reset \d+", r)
               for r in restart.reactions), restart.reactions


def test_the_report_is_in_the_issue_order_with_ticks_units_and_outputs(tmp_path, capsys):
    out_json = tmp_path / "out.json"
    assert main(["run", str(CATALOGUE / "default.yaml"), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    order = ["default (seed 7): PASSED", "The README's default", "Faults as they happened", "│ 410 storm",
             "Expectations (the scenario file)", "Invariants (every run)", "Metrics", "API calls by verb and status",
             "time:", "logs:", "JSON:", "replay: kubesim run"]
    positions = [out.find(marker) for marker in order]
    assert -1 not in positions and positions == sorted(positions), list(zip(order, positions))
    assert re.search(r"✓ │ expect\.metrics\.makespan\s+│ <= 600\s+│ [\d.]+", out)
    assert "✓ │ no task lost" in out and "✓ │ one live pod per try" in out
    assert re.search(r"│ makespan\s+│\s+[\d.,]+ │ s\s+│", out) and re.search(r"│ throughput\s+│.*│ tasks/s", out)
    assert re.search(r"│ create │\s+60 │ 201 x60", out)
    assert re.search(r"time: [\d.,]+ virtual seconds in [\d.]+ wall seconds \([\d,]+x\)", out)
    paths = ("replay:", "JSON:")  # never folded: they are copied and pasted
    assert max(len(line) for line in out.splitlines() if not line.startswith(paths)) <= 80
    [saved] = json.loads(out_json.read_text())
    assert {c["name"] for c in saved["invariants"]} == set(invariants.INVARIANTS)
    assert [c["name"] for c in saved["expectations"]][:2] == ["until.max_virtual_seconds", "expect.metrics.tasks_succeeded"]
    assert saved["faults"][0]["label"] == "410 storm" and saved["faults"][0]["reactions"]


def test_a_failed_expectation_shows_a_cross_with_bound_and_actual(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nseed: 1\ncluster: {nodes: 1}\nworkload: {tasks_per_dag: 2, names: plain, "
                    "run_seconds: 5}\nexpect:\n  metrics: {makespan: {max: 1}}\n", encoding="utf-8")
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"✗ │ expect\.metrics\.makespan\s+│ <= 1\s+│ [\d.]+", out)
    assert f"{path}:6: expect.metrics.makespan: expected makespan <= 1, got" in out


def test_a_passing_run_is_quiet_and_its_log_goes_to_the_file(tmp_path, capsys):
    assert main(["run", str(CATALOGUE / "api_outage.yaml")]) == 0
    out, err = capsys.readouterr()
    assert len((out + err).splitlines()) < 150      # it printed thousands of log lines before
    assert err == ""
    log = (tmp_path / "kubesim.log").read_text()
    warnings = log.count(" WARNING ")
    assert warnings >= 5 and "could not clean up pod" in log and re.search(r"t=\s*[\d.]+s WARNING", log)
    assert f"{warnings:,} warnings" in out and "in kubesim.log" in out


def test_verbose_prints_the_log_lines_as_they_come(tmp_path, capsys):
    assert main(["run", str(CATALOGUE / "default.yaml"), "-v"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"t=\s*40\.\d+s INFO\s+executor\.watcher: watch of default expired", err)


def test_progress_shows_tasks_done_and_virtual_over_wall_speed():
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    result = run_with_progress(catalogue("default"), None, console, run)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())  # without colours
    assert result.passed
    assert re.search(r"\d+/60 tasks", shown) and re.search(r"t=[\d,]+s virtual, [\d,]+x wall", shown)


def test_the_glossary_explains_every_metric_and_kubesim_metrics_lists_them(capsys):
    assert set(GLOSSARY) == set(METRICS)
    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    for name in METRICS:
        assert name in out
    words = " ".join(out.replace("│", " ").split())
    assert "virtual time from the start to the last task ending" in words


def test_docs_metrics_md_is_the_glossary_and_the_readme_links_it():
    assert (ROOT / "docs" / "metrics.md").read_text() == glossary_markdown(), \
        "regenerate: python -c 'from scenarios.glossary import glossary_markdown as g; print(g(), end=\"\")' > docs/metrics.md"
    assert "(docs/metrics.md)" in (ROOT / "README.md").read_text()


def test_every_invariant_that_can_fire_is_in_the_registry():
    source = Path(invariants.__file__).read_text()
    named = set(re.findall(r'Violation\(\s*"([^"]+)"', source))
    assert named and named <= set(invariants.INVARIANTS), named - set(invariants.INVARIANTS)


def test_pods_take_time_to_start_on_the_default_cluster():
    """Scheduling (0.5 s) and image pull (lognormal, median 3 s) by default: pod_start is never
    zero where pods run, and a file can still ask for instant starts."""
    for name in ("default", "watch_410_storm", "scheduler_restart", "throttling_429"):
        metrics = run(catalogue(name)).metrics
        assert 1.0 < metrics["pod_start_p50"] < 10.0 and metrics["pod_start_p99"] > metrics["pod_start_p50"], name
    loaded = catalogue("default")
    loaded.scenario.cluster.scheduling_delay = 0
    loaded.scenario.cluster.image_pull_seconds = type(loaded.scenario.cluster.image_pull_seconds)(constant=0)
    assert run(loaded).metrics["pod_start_p99"] == 0
