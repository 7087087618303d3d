"""Top-level pytest configuration: scenario files under scenarios/ are collected as tests
(one item per scenario, or per matrix entry), and the kubesim fixtures are available."""

import os

from hypothesis import settings

pytest_plugins = ["scenarios.pytest_plugin"]

# Property tests are deterministic like the rest: the same examples on every run and machine, no
# example database carried between runs, and no wall-clock deadline (speed lives in benchmarks/).
# HYPOTHESIS_PROFILE=explore draws fresh examples, to hunt for new failures locally.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_configure(config):
    # A bad scenario file is a collection error for that file only: the rest still runs, and
    # the run still fails (pytest's default would stop the whole session before any test).
    config.option.continue_on_collection_errors = True
