"""The floors of docs/CONTRACTS.md hold: ``lint-imports`` keeps every contract in pyproject.toml.

The contracts (``[tool.importlinter]``) state the layer order entry > composition >
stages > services > models > ground, and that only the demo wiring imports the demo
world. Run in a subprocess so the check sees the tree under test (``PYTHONPATH``), as
``make test`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports not installed; run `make setup` (import-linter, test extra)")
    return [exe, str(ROOT / "pyproject.toml"), "--no-cache"]


def test_no_module_imports_a_floor_above_it() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        _lint_imports(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    broken = done.stdout[done.stdout.find("Broken contracts") :]
    assert done.returncode == 0, broken or done.stdout + done.stderr
    assert "0 broken" in done.stdout
