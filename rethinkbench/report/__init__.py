"""HTML claim reports rendered from a stored ``results.json`` (``docs/results-schema.md``).

    from rethinkbench.report import write_report
    path = write_report("reports/results.json", "reports/")   # -> reports/index.html

``write_report(results, out_dir) -> Path`` writes ``out_dir/index.html`` atomically;
``render_html(results) -> str`` returns the page. Both are imported lazily: matplotlib and Jinja2
load only when a report is actually rendered, not whenever the pytest plugin imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at runtime __getattr__ below does the import
    from rethinkbench.report.render import render_html, write_report

__all__ = ["render_html", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rethinkbench.report import render

        return getattr(render, name)
    raise AttributeError(f"module 'rethinkbench.report' has no attribute {name!r}")
