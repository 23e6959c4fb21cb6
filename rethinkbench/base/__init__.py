"""The base layer: errors, argument checks, seeding, threads and provenance.

Everything in rethinkbench may import this layer; it imports nothing of ours. Only provenance.py
imports torch (to name the device and versions a run trained with).
"""
