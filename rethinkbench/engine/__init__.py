"""The training engine behind ``rb.train`` / ``rb.train_many``: a run's config, how it trains,
where its result is kept, and what makes it fast on each device.

- config.py: ``RunConfig`` and its cache key.
- loop.py: the lower layer both loops share: the lr schedule, device and cuDNN settings,
  evaluation, data preparation, the per-run thread pin.
- train.py: one run, the plain loop (nanoGPT-style: read top to bottom).
- graphs.py: a training step captured once in a CUDA graph and replayed (CUDA only).
- cohort.py: several runs that differ only in seed, corruption or level trained as one cohort;
  stacked.py: the stacked model itself (vmap over the members, one fused SGD update).
- cache.py: results (and kept networks) by key, atomic and locked across processes.
- plan.py: which runs a selection of claims needs, which are cached, and how long the rest take.

Imports: ``registry`` (names to factories and loaders), ``harness`` and ``base``; never the suite.
"""
