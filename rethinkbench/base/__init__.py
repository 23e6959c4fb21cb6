"""The base layer: errors, seeding and provenance.

Everything in rethinkbench may import this layer; it imports nothing of ours. Only provenance.py
imports torch (to name the device and versions a run trained with).
"""
