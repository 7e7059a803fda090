"""environment.yml describes the same environment as pyproject.toml for conda users."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
#: Left to the user's CUDA choice (torch) or installed after it (depends on torch).
TORCH_STACK = {"torch", "torchmetrics"}
#: pip extras that only aggregate other extras.
AGGREGATES = {"stf-pipeline"}


def _name(requirement: str) -> str:
    """Normalised distribution name of a PEP 508 / conda match spec ("dask[array]>=1" -> "dask")."""
    name = re.match(r"[A-Za-z0-9_.-]+", requirement.strip())
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def _environment() -> dict[str, Any]:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _environment_names() -> set[str]:
    names = set()
    for dep in _environment()["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(d) for d in dep["pip"]}
        else:
            names.add(_name(dep))
    return names


def _pyproject_names() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    return {_name(r) for r in requirements} - AGGREGATES


def test_environment_is_conda_forge_python_311() -> None:
    env = _environment()
    assert env["channels"][0] == "conda-forge"
    assert "python=3.11" in env["dependencies"]


def test_lists_every_pyproject_package_except_the_torch_stack() -> None:
    missing = _pyproject_names() - TORCH_STACK - _environment_names()
    assert not missing, f"environment.yml lacks {sorted(missing)}"


def test_torch_is_left_to_the_user_and_explained() -> None:
    assert not TORCH_STACK & _environment_names()
    text = (REPO / "environment.yml").read_text()
    assert "torch==2.13.0" in text
    assert "download.pytorch.org/whl/cpu" in text
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text()


def test_constraints_are_carried_over() -> None:
    deps = [d for d in _environment()["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("pandas") and "<3" in d for d in deps)
    assert any(d.startswith("fastapi") and "<0.151" in d for d in deps)
