"""pytest integration: scenario files as test items, and fixtures for users' own tests.

The top-level conftest.py loads this plugin; in another project add
``pytest_plugins = ["scenarios.pytest_plugin"]`` to a conftest.py to get the fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .loader import LoadedScenario, ScenarioError, load
from .runner import describe_failure, run

SCENARIO_ROOT = "scenarios"
NOT_SCENARIOS = ("mutants.yaml",)   # the mutation check's file lives beside the scenarios


def pytest_addoption(parser):
    group = parser.getgroup("kubesim")
    group.addoption("--kubesim-seed", type=int, default=None,
                    help="run every scenario with this seed instead of the one in its file")
    group.addoption("--kubesim-executor", choices=("kubesim", "airflow"), default=None,
                    help="run every scenario with this executor under test instead of its file's under_test")


def pytest_configure(config):
    # Scenario files use these; registered here so projects using the plugin need not (and
    # --strict-markers does not turn them into collection errors).
    config.addinivalue_line("markers", "slow: long-running scenario, opt-in with -m slow")
    config.addinivalue_line("markers", "scale: large-scale scenario, opt-in with -m scale")
    config.addinivalue_line("markers", "airflow: needs upstream Airflow's executor (the airflow extra)")


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix in (".yaml", ".yml") and SCENARIO_ROOT in file_path.parts \
            and file_path.name not in NOT_SCENARIOS:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        try:
            loaded = load(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        for scenario in loaded:
            item = ScenarioItem.from_parent(self, name=scenario.id, loaded=scenario)
            for marker in scenario.scenario.markers:
                item.add_marker(marker)
            yield item


class ScenarioFailed(Exception):
    def __init__(self, result):
        super().__init__(describe_failure(result))
        self.result = result


class ScenarioItem(pytest.Item):
    def __init__(self, *, loaded: LoadedScenario, **kwargs):
        super().__init__(**kwargs)
        self.loaded = loaded

    def runtest(self):
        executor = self.config.getoption("--kubesim-executor") or self.loaded.scenario.under_test
        if executor == "airflow":
            require_airflow()
        result = run(self.loaded, seed=self.config.getoption("--kubesim-seed"), executor=executor)
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario: {self.name}"


def require_airflow() -> None:
    """Skip without upstream Airflow's executor installed, unless KUBESIM_REQUIRE_AIRFLOW=1 (CI's
    Airflow environment) makes that a failure."""
    from .upstream import unavailable_reason
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("KUBESIM_REQUIRE_AIRFLOW") == "1":
        pytest.fail(f"{reason}, and KUBESIM_REQUIRE_AIRFLOW=1 requires it")
    pytest.skip(f"{reason} (set KUBESIM_REQUIRE_AIRFLOW=1 to make this a failure)")


# -- fixtures for users' own tests -----------------------------------------------------------------

@pytest.fixture
def fake_cluster(request):
    """A FakeCluster seeded by --kubesim-seed (default 0)."""
    from fakecluster import FakeCluster
    return FakeCluster(seed=request.config.getoption("--kubesim-seed") or 0)


@pytest.fixture
def executor_world(fake_cluster):
    """A World on the fake cluster: add tasks, start schedulers, run until done."""
    from .world import World
    return World(fake_cluster)
