"""What pyproject.toml declares is what CI tests: the test tools' floors are the versions .ci/run
installs for its floors run (.ci/floors.txt), and no module imports another package's
private internals (a private name moved between pytest-benchmark 5.2 and 5.3 and broke every run)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def _floors_declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for spec in project["optional-dependencies"]["dev"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", spec.split(";")[0].strip())
        assert m, f"dev dependency {spec!r} has no plain '>=' floor: CI tests the floors it declares"
        out[m.group(1).lower()] = m.group(2)
    return out


def _floors_tested() -> dict[str, str]:
    out = {}
    for line in (ROOT / ".ci" / "floors.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_ci_tests_exactly_the_declared_floors_of_the_test_tools():
    from packaging.version import Version   # "7.4" and "7.4.0" are the same version

    norm = lambda d: {name: Version(v) for name, v in d.items()}
    assert norm(_floors_tested()) == norm(_floors_declared())


PRIVATE = re.compile(r"^\s*(from|import)\s+(_pytest|pytest_benchmark\.(plugin|utils)|torch\._|xdist\.)", re.M)


@pytest.mark.parametrize("folder", ["rethinkbench", "claims", "benchmarks"])
def test_no_imports_of_other_packages_internals(folder):
    hits = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}" for p in (ROOT / folder).rglob("*.py")
            for m in PRIVATE.finditer(p.read_text())]
    assert hits == []



def test_no_dependency_has_an_upper_bound():
    """A user with a newer torch must not be refused by pip: floors only (issue 17)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for deps in project["optional-dependencies"].values() for s in deps]
    capped = [s for s in specs if re.search(r"<|~=|==|!=", s.split(";")[0])]
    assert capped == []
