"""The training engine behind `rb.train` / `rb.train_many`: what makes a step fast on each device.

- graphs.py: a training step captured once in a CUDA graph and replayed over static buffers (CUDA);
  called eagerly on CPU, so CPU numbers are the plain loop's.
- cohort.py: several runs that differ only in seed, corruption or level trained as one stacked model.
- plan.py: which runs a selection of claims needs, which are cached, and how long the rest will take.
"""
