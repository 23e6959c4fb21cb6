"""Measures computed on trained networks: what distinguishes a memorizing network from one that
generalizes: Arpit et al.'s per-example memorization and critical sample ratio (memorization.py),
margins (margins.py), Bartlett et al.'s / Neyshabur et al.'s norm measures (norms.py), their
per-epoch record (tracking.py), Neyshabur et al.'s expected sharpness with its KL term
(sharpness.py) and Dziugaite & Roy's optimized PAC-Bayes bound (pacbayes.py).

Imports: ``harness`` and ``base``; never the engine or the suite (a measure takes a network and
data, however they were trained). So the layer sits below the engine, whose loop calls
tracking.spectral_record for runs with RunConfig.track_spectral.
"""
