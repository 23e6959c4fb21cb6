"""The package's architecture (docs/architecture.md), checked: import-linter's contracts in
pyproject.toml (layers that only import down; report/compare never import torch; nothing below the
suite imports pytest), the torch-free commands really run without torch, and every function-level
import says why it is not at the top."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rethinkbench"
LAYERS = ("base", "harness", "registry", "engine", "theory", "measures", "suite", "report")


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter", reason="import-linter is a dev dependency (pip install -e '.[dev]')")
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_every_layer_is_a_folder_that_says_what_it_owns_and_may_import():
    for layer in LAYERS:
        init = PACKAGE / layer / "__init__.py"
        assert init.is_file(), f"rethinkbench/{layer}/ is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc.lower(), f"rethinkbench/{layer}/__init__.py's docstring does not say what it may import"


@pytest.mark.parametrize("code", [
    "import rethinkbench",
    "import rethinkbench.report.compare",
    "from rethinkbench.cli import main; main(['compare', '--help'])",
])
def test_the_torch_free_paths_do_not_import_torch(code):
    probe = f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_rethinkbench_report_and_compare_run_without_torch(tmp_path):
    """`rethinkbench compare` and `rethinkbench report` on the committed baseline, with torch made
    unimportable: they read results.json and must never need it."""
    baseline = ROOT / "reports" / "baselines" / "cpu-mnist5k.json"
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is blocked in this test')\n")
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from rethinkbench.cli import main; "
             "sys.exit(main(sys.argv[2:]))")
    for args in (["compare", str(baseline), str(baseline)], ["report", str(baseline), "--output-dir", str(tmp_path / "out")]):
        proc = subprocess.run([sys.executable, "-c", probe, str(blocker), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"rethinkbench {args[0]}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"


def _function_level_imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        # the comment may stand above a group of imports: look past the group
                        i = sub.lineno - 2
                        while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
                            i -= 1
                        yield path.relative_to(ROOT), sub.lineno, lines[sub.lineno - 1], lines[i] if i >= 0 else ""


def test_every_function_level_import_says_why():
    """An import inside a function keeps an optional or heavy dependency off a light path (ray,
    torchvision, the CLI's start-up); it carries a comment saying so, on its line or just above."""
    silent = [f"{p}:{n}: {line.strip()}" for p, n, line, above in _function_level_imports()
              if "#" not in line and not above.strip().startswith("#")]
    assert not silent, "function-level imports without a reason:\n" + "\n".join(silent)
