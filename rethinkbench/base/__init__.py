"""The base layer: errors, argument checks, seeding, threads, provenance and the machine-speed probe.

Everything in rethinkbench may import this layer; it imports nothing of ours. seeding.py,
threads.py, provenance.py (to name the device and versions a run trained with) and speed.py (to
time a fixed piece of training work) import torch; errors.py, arguments.py and version.py do not.
"""
