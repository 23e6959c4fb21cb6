"""Results, after the fact: ``results.json`` read and checked against its schema (results_io.py),
compared with a baseline (compare.py, with rows.py, timing.py, tolerance.py) and rendered to HTML
(render.py, with views.py, formatting.py, figures.py, templates/); verdicts.py names the verdicts.

    from rethinkbench.report import write_report
    path = write_report("reports/results.json", "reports/")   # -> reports/index.html

This layer never imports torch (a contract in pyproject.toml, checked by ``tests/test_layers.py``):
``rethinkbench report`` and ``rethinkbench compare`` start fast and run where torch is not
installed. Imports: nothing of ours but this folder. ``write_report`` and ``render_html`` are
imported lazily: matplotlib and Jinja2 load only when a report is actually rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at runtime __getattr__ below does the import
    from rethinkbench.report.render import render_html, write_report

__all__ = ["render_html", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rethinkbench.report import render   # matplotlib and Jinja2 load only when a report is drawn

        return getattr(render, name)
    raise AttributeError(f"module 'rethinkbench.report' has no attribute {name!r}")
