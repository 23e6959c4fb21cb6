"""The pytest suite: the plugin (options, fixtures, outcomes, results, xdist, plan mode), the
``run`` fixture's runner, claim evidence, scales, protocols and figure specs, and ``rethinkbench
list``'s listing.

Imports every layer below it (engine, theory, measures, registry, harness, report, base); nothing
below imports it. The only module that imports pytest at import time lives here.
"""
