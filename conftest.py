"""Top-level pytest configuration: scenario files under scenarios/ are collected as tests
(one item per scenario, or per matrix entry), and the kubesim fixtures are available."""

pytest_plugins = ["scenarios.pytest_plugin"]
