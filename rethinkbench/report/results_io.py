"""Reading ``results.json``: the file read and checked against its JSON Schema
(``rethinkbench/report/results.schema.json``, described in ``docs/results-schema.md``).

A value of the wrong type (a number stored as a string, an unknown verdict) is a
:class:`ResultsError` naming the file, the JSON path and what was expected, never a silent row in a
comparison or a blank cell in a report.
"""

from __future__ import annotations

import functools
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

SUPPORTED_SCHEMA = 1
SCHEMA_FILE = "results.schema.json"   # in this package; docs/results-schema.md describes it


class ResultsError(ValueError):
    """Results that cannot be used: missing or unreadable file, invalid JSON, wrong ``schema``,
    or a malformed field. The message names the file (or ``baseline``/``current``) and the value."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)


def load_results(path: str | os.PathLike) -> dict:
    """Read and check a ``results.json``; :class:`ResultsError` naming ``path`` if unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file", path) from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, expected a results.json file", path) from None
    except UnicodeDecodeError as error:
        raise ResultsError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                           "expected a results.json file", path) from None
    except OSError as error:
        raise ResultsError(f"{path}: cannot be read ({error.strerror or error})", path) from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: "
                           f"{error.msg}", path) from None
    try:
        check_results(results, source=str(path))
    except ResultsError as error:
        raise ResultsError(str(error), path) from None
    return results


def check_results(results: Any, *, source: str = "results") -> None:
    """Check ``results`` against the results schema; ``source`` names it in errors.

    The first checks say whether this is a rethinkbench results file at all, and in which schema
    version; then every value the report and the comparison read must have its documented type.
    A :class:`ResultsError` names the JSON path of the bad value and what was expected."""
    if not isinstance(results, dict):
        raise ResultsError(f"{source}: expected a JSON object at the top level, "
                           f"got {type(results).__name__}")
    if "schema" not in results:
        raise ResultsError(f"{source}: no 'schema' field, so not a rethinkbench results file "
                           f"(this rethinkbench reads schema {SUPPORTED_SCHEMA})")
    schema = results["schema"]
    if isinstance(schema, bool) or schema != SUPPORTED_SCHEMA:
        raise ResultsError(f"{source}: schema {schema!r} is not supported "
                           f"(this rethinkbench reads schema {SUPPORTED_SCHEMA})")
    from jsonschema.exceptions import best_match   # with the validator: only when a file is checked

    errors = list(_validator().iter_errors(results))
    if errors:
        error = best_match(errors)
        more = len(errors) - 1
        raise ResultsError(f"{source}: {_violation_text(error)}"
                           + (f" ({more} more problem{'s' if more != 1 else ''} in this file)"
                              if more else ""))


def results_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a results.json, as shipped in this package."""
    return json.loads(resources.files("rethinkbench.report").joinpath(SCHEMA_FILE)
                      .read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator():
    # Imported here: jsonschema loads only when results are actually read.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(results_schema())


_JSON_TYPES = {"number": "a number", "integer": "an integer", "string": "a string",
               "boolean": "true or false", "null": "null", "object": "an object",
               "array": "a list"}


def _violation_text(error) -> str:
    """``claims[3].items[0].measured.test_acc.value: expected a number or null, got '0.97'
    (a string)`` from a jsonschema ValidationError."""
    where = _json_path(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"{where}: the required field {missing[0]!r} is missing"
    if "propertyNames" in error.relative_schema_path:   # the instance is the bad key itself
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{where}: expected only the keys {allowed}, got the key {error.instance!r}"
    # A subschema's description says best what it wants (the root's describes the whole file).
    described = error.schema.get("description") if error.schema is not _validator().schema else None
    return f"{where}: expected {described or _expected(error)}, got {_value_text(error.instance)}"


def _expected(error) -> str:
    value = error.validator_value
    if error.validator == "type":
        names = [value] if isinstance(value, str) else value
        return " or ".join(_JSON_TYPES.get(name, name) for name in names)
    if error.validator == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in value)
    if error.validator == "const":
        return json.dumps(value)
    if error.validator == "minimum":
        return f"a number >= {value}"
    return error.message


def _json_path(path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def _value_text(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    kind = {str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    return f"{_short_repr(value)} ({kind})" if value is not None else "null"


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


__all__ = ["SUPPORTED_SCHEMA", "ResultsError", "check_results", "load_results", "results_schema"]
