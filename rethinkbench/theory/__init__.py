"""The paper's theory, checked exactly rather than by training: Theorem 1's construction
(theorem1.py), linear models and SGD's minimum-norm solution (linear.py), the §5 kernel solve
(kernels.py, with the tiled Cholesky in tiled.py for matrices too big to hold dense), random and
Gabor features (features.py), shared linear algebra (linalg.py) and Hypothesis strategies for the
theory's tests (testing.py).

``rb.theory.fit_any_labeling(x, y)`` and the other names below are the public API.

Imports: ``harness`` (kernels load a dataset) and ``base``; never the engine or the suite.
"""
from rethinkbench.theory.linear import (SGDResult, least_squares_hessian, min_norm_solution,
                                        null_space_component, row_space_distance, sgd_least_squares)
from rethinkbench.theory.theorem1 import (Theorem1Info, Theorem1Net, deepen, fit_any_labeling, hidden_widths,
                                          layer_stats, theorem1_matrix)

__all__ = ["Theorem1Info", "Theorem1Net", "fit_any_labeling", "theorem1_matrix", "deepen", "layer_stats",
           "hidden_widths", "SGDResult", "sgd_least_squares", "min_norm_solution", "null_space_component",
           "row_space_distance", "least_squares_hessian"]
