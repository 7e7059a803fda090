"""infra/docker: the images build from files that exist, with the project's pins and GDAL env."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.catalog.gdal_env import GDAL_SETTINGS

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "infra" / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*[!e]"))  # Dockerfile.cpu/.gpu, not *.dockerignore


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _env(dockerfile: Path) -> dict[str, str]:
    env = {}
    for word, rest in _instructions(dockerfile):
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in rest.split())
    return env


def _read_env_file(path: Path) -> dict[str, str]:
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))


def _copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for word, rest in _instructions(dockerfile):
        if word == "COPY" and "--from=" not in rest:
            sources.extend(rest.split()[:-1])
    return sources


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's last-match-wins rule for a context path (enough for an allow-list)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern):
            ignored = not negate
    return ignored


def test_both_images_exist() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_and_are_in_the_context(dockerfile: Path) -> None:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
    patterns = [ln.strip() for ln in ignore if ln.strip() and not ln.startswith("#")]
    sources = _copy_sources(dockerfile)
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _ignored(source.rstrip("/"), patterns), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_installs_pinned_torch_then_project_under_constraints(dockerfile: Path) -> None:
    runs = [rest for word, rest in _instructions(dockerfile) if word == "RUN" and "install" in rest]
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    project = next(i for i, r in enumerate(runs) if '".[flows]"' in r)
    assert torch < project
    pinned = re.search(r"torch==([\d.]+)", runs[torch])
    assert pinned and f"torch=={pinned.group(1)}" in (REPO / "constraints.txt").read_text()
    assert all("-c constraints.txt" in runs[i] for i in (torch, project))
    wheel_index = "whl/cpu" if dockerfile.suffix == ".cpu" else "${TORCH_INDEX}"
    assert wheel_index in runs[torch]


def test_gpu_image_starts_from_cuda_with_a_matching_torch_build() -> None:
    instructions = _instructions(DOCKER / "Dockerfile.gpu")
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG")
    cuda = re.search(r"nvidia/cuda:(\d+)\.(\d+)", args["CUDA_IMAGE"])
    assert cuda, args["CUDA_IMAGE"]
    assert args["TORCH_INDEX"].endswith(f"/cu{cuda.group(1)}{cuda.group(2)}")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_gdal_env_equals_the_pipeline_settings(dockerfile: Path) -> None:
    env = _env(dockerfile)
    assert {k: env[k] for k in GDAL_SETTINGS} == dict(GDAL_SETTINGS)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_gdal_env_file_and_configmap_equal_the_pipeline_settings() -> None:
    assert _read_env_file(DOCKER / "gdal.env") == dict(GDAL_SETTINGS)
    configmap: dict[str, Any] = yaml.safe_load((REPO / "infra/k8s/gdal-configmap.yaml").read_text())
    assert configmap["data"] == dict(GDAL_SETTINGS)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_an_unprivileged_user(dockerfile: Path) -> None:
    users = [rest for word, rest in _instructions(dockerfile) if word == "USER"]
    assert users and users[-1] not in {"root", "0"}
