"""Top-level pytest configuration: scenario files under scenarios/ are collected as tests
(one item per scenario, or per matrix entry), and the kubesim fixtures are available."""

pytest_plugins = ["scenarios.pytest_plugin"]


def pytest_configure(config):
    # A bad scenario file is a collection error for that file only: the rest still runs, and
    # the run still fails (pytest's default would stop the whole session before any test).
    config.option.continue_on_collection_errors = True
