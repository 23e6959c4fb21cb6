"""The rethinkbench pytest plugin, one module per job:

- options.py: the command-line options and their parsers;
- workers.py: `pytest claims/` on one pytest-xdist worker per core by default;
- state.py: the session's settings, checked at configure time;
- configure.py: markers, state, results session, report header, benchmark table shape;
- fixtures.py: scale, device, data_root, dataset, seeds, claim, run;
- items.py: parametrization by model, claim evidence per item, skips with reasons;
- outcomes.py: each claim item's outcome and payload for results.json;
- results.py: results.json, the HTML report and the terminal's claim table;
- tracker.py: tests that never reported (a dead xdist worker);
- planmode.py: --plan;
- executor.py: --executor: the runs trained on a cluster (Ray, Slurm via submitit) first.

Loaded through ``rethinkbench.pytest_plugin`` (the project's conftest.py names it).
"""
pytest_plugins = [f"rethinkbench.suite.plugin.{name}" for name in
                  ("options", "workers", "configure", "fixtures", "items", "outcomes", "results", "tracker",
                   "planmode", "executor")]
