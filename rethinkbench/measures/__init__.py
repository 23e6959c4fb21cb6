"""Measures computed on trained networks: what distinguishes a memorizing network from one that
generalizes: Arpit et al.'s per-example memorization and critical sample ratio (memorization.py),
margins (margins.py) and Bartlett et al.'s / Neyshabur et al.'s norm measures (norms.py).

Imports: ``harness`` and ``base``; never the engine or the suite (a measure takes a network and
data, however they were trained).
"""
