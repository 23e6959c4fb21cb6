"""The package version (pyproject.toml's, checked equal by tests/test_packaging.py)."""
__version__ = "0.1.0"
