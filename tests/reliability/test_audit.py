"""The CI audit wrapper: real findings fail, an unreachable vulnerability service only warns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

AUDIT = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"


def _fake_pip_audit(tmp_path: Path, deps: list[dict]) -> Path:
    exe = tmp_path / "pip-audit"
    report = json.dumps({"dependencies": deps, "fixes": []})
    exe.write_text(f"#!{sys.executable}\nprint({report!r})\n")
    exe.chmod(0o755)
    return exe


@pytest.mark.parametrize(
    ("deps", "code", "needle"),
    [
        ([{"name": "a", "version": "1", "vulns": []}], 0, "1 packages audited"),
        ([{"name": "a", "version": "1", "skip_reason": "not found on PyPI"}], 0, "WARNING"),
        (
            [{"name": "a", "version": "1", "vulns": [{"id": "PYSEC-1", "fix_versions": ["2"]}]}],
            1,
            "VULNERABLE a 1: PYSEC-1 (fix: 2)",
        ),
    ],
)
def test_audit_fails_only_on_findings(tmp_path: Path, deps: list, code: int, needle: str) -> None:
    exe = _fake_pip_audit(tmp_path, deps)
    out = subprocess.run([sys.executable, str(AUDIT), str(exe)], capture_output=True, text=True)
    assert out.returncode == code and needle in out.stdout, out.stdout
