# The rethinkbench pytest plugin: --gpu, --scale, --dataset, --seeds, ... and the claim fixtures.
pytest_plugins = ["rethinkbench.pytest_plugin"]
