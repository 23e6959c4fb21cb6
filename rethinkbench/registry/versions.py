"""A plugin's version, part of every run's cache key: its `version` attribute, else a hash of its
source (so changed code retrains)."""
from __future__ import annotations

import hashlib
import inspect
import os
import sys
from pathlib import Path

from rethinkbench.base.errors import UsageError


def plugin_version(kind: str, name: str, obj) -> str:
    """The plugin's `version` attribute (str or int; bump it to retrain), else "sha256:<12 hex>"
    of its source: every .py file of the outermost regular package that defines it, or its one
    file for a top-level module."""
    v = getattr(obj, "version", None)
    if v is not None:
        if isinstance(v, bool) or not isinstance(v, (str, int)) or str(v).strip() == "":
            raise UsageError(f"{kind} plugin {name!r}: version must be a non-empty str or an int, "
                             f"got {v!r}")
        return str(v)
    files = _source_files(obj)
    if not files:
        raise UsageError(f"{kind} plugin {name!r} has no source file to hash for its version; "
                         f"set one on it (e.g. `{getattr(obj, '__name__', 'factory')}.version = \"1\"`)")
    h = hashlib.sha256()
    base = os.path.commonpath([str(f.parent) for f in files])
    for f in files:
        h.update(os.path.relpath(f, base).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()[:12]


def _source_files(obj) -> list[Path]:
    module = inspect.getmodule(obj)
    if module is None or not getattr(module, "__file__", None):
        return []
    parts = module.__name__.split(".")
    for i in range(1, len(parts)):   # the outermost package with an __init__.py (not a namespace)
        pkg = sys.modules.get(".".join(parts[:i]))
        pkg_file = getattr(pkg, "__file__", None)
        if pkg_file and Path(pkg_file).name == "__init__.py":
            root = Path(pkg_file).parent
            return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    if Path(module.__file__).name == "__init__.py":   # the package itself
        root = Path(module.__file__).parent
        return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    path = Path(module.__file__)
    return [path] if path.suffix == ".py" and path.exists() else []
