"""infra/terraform: formatted, and valid when the providers can be initialised offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")


def _terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_module_has_the_documented_files() -> None:
    names = {p.name for p in TERRAFORM_DIR.glob("*.tf")}
    assert {"versions.tf", "variables.tf", "outputs.tf", "main.tf", "gpu.tf"} <= names
    main = (TERRAFORM_DIR / "main.tf").read_text()
    assert "versioning {" in main and "lifecycle_rule {" in main


def test_every_variable_and_output_is_described() -> None:
    for name in ("variables.tf", "outputs.tf"):
        text = (TERRAFORM_DIR / name).read_text()
        blocks = text.count('variable "') + text.count('output "')
        assert blocks and text.count("description") == blocks, name


def _first_error(stderr: str) -> str:
    lines = [ln.strip(" │╷╵") for ln in stderr.splitlines()]
    return next((ln for ln in lines if ln.startswith("Error")), stderr.strip()[-200:])


@needs_terraform
def test_terraform_fmt_is_clean() -> None:
    result = _terraform("fmt", "-check", "-recursive", "-diff", cwd=TERRAFORM_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_terraform_validate(tmp_path: Path) -> None:
    work = tmp_path / "tf"
    shutil.copytree(TERRAFORM_DIR, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    init = _terraform("init", "-backend=false", "-input=false", "-no-color", cwd=work)
    if init.returncode != 0:
        pytest.skip(
            "terraform validate needs the hashicorp/google provider and `terraform init` "
            f"could not fetch it (offline?): {_first_error(init.stderr)}"
        )
    result = _terraform("validate", "-no-color", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
