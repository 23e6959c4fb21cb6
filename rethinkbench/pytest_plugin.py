"""The pytest plugin's entry point: the line ``pytest_plugins = ["rethinkbench.pytest_plugin"]`` in
the project's conftest.py (and ``-p rethinkbench.pytest_plugin`` in pytester tests) names this
module, which loads the suite's plugin modules, one job each (rethinkbench/suite/plugin/)."""
pytest_plugins = ["rethinkbench.suite.plugin"]
