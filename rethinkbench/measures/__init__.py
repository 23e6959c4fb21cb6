"""Measures computed on trained networks: what distinguishes a memorizing network from one that
generalizes (Arpit et al.'s per-example memorization and critical sample ratio today).

Imports: ``harness`` and ``base``; never the engine or the suite (a measure takes a network and
data, however they were trained).
"""
