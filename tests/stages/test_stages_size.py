"""Size before work: ``stf run`` / ``stf cube`` estimate the run first and refuse what cannot be.

A continent-sized box over the tiny demo world (served as ``stac.url: demo``) is refused
in one line with the estimate and the setting to change, in seconds, before any read;
so is a run above ``compute.max_run_gib``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import stages
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.stages.size import GIB, check_size

#: Western and central Europe: thousands of kilometres around a 3 km world.
CONTINENT = [-10.0, 35.0, 30.0, 60.0]


def _config(world: Any, root: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "region": {"name": "tiny", "bbox": list(world.bbox)},
        "time": {"start": "2024-06-08", "end": "2024-06-17", "search_margin_days": 8},
        "stac": {"url": "demo"},
        "bands": ["green", "red", "nir"],
        "chunks": {"y": 48, "x": 48, "time": 8},
        "model": {"name": "starfm", "size": "tiny"},
        "output_root": str(root),
    }
    return {**data, **changes}


@pytest.fixture
def demo_endpoint(tiny_world: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``stac.url: demo`` serves the tiny world (an existing world is reused as it is)."""
    monkeypatch.setenv("STF_DEMO_WORLD", str(tiny_world.root))
    return tiny_world


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    return code, out, lines[-1] if lines else ""


def test_the_estimate_counts_pixels_days_bytes_and_tasks(
    demo_endpoint: Any, tmp_path: Path
) -> None:
    cfg = parse_config(_config(demo_endpoint, tmp_path))
    items = stages.search(cfg)
    size = stages.size(cfg, items)
    ny, nx = size.shape
    # the 96 px world's own box snaps outward to whole 480 m cells: one more on each side
    assert (ny, nx) == (128, 128) and size.days == 10 and size.bands == 3
    assert size.tasks == 2 * 9  # 3 x 3 blocks of 48 px, 10 days in store chunks of 8
    assert size.bytes_out == ny * nx * 10 * (3 * 2 + 9)
    assert size.fine_items == len(items.result.fine) > 0 and size.bytes_in > 0
    assert size.coverage > 0.99
    check_size(cfg, size)  # the world itself is within the data and the budget


def test_a_continent_on_the_demo_endpoint_is_refused_in_one_line(
    demo_endpoint: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _config(demo_endpoint, tmp_path, region={"name": "europe", "bbox": CONTINENT})
    config = tmp_path / "europe.yaml"
    config.write_text(yaml.safe_dump(data))
    for command in ("run", "cube"):
        start = time.monotonic()
        code, _out, line = _cli([command, str(config)], capsys)
        assert code == 2, line
        assert time.monotonic() - start < 120, "sizing must not wait on a continent's grid"
        assert "reaches beyond the data" in line and "region.bbox" in line
        assert "GiB out" in line and "tasks" in line and "% of the region covered" in line
    assert not (tmp_path / "fusion.zarr").exists()


def test_stf_cube_prints_the_size_first(
    demo_endpoint: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(_config(demo_endpoint, tmp_path)))
    code, out, _line = _cli(["cube", str(config)], capsys)
    assert code == 0 and out.startswith("size: 128 x 128 px (0.0164 Mpx), 10 days, 3 bands")


def test_a_run_above_the_budget_is_refused_with_the_setting_to_raise(
    demo_endpoint: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = 1e-4  # GiB: the tiny run needs a few MiB
    data = _config(demo_endpoint, tmp_path, compute={"max_run_gib": budget})
    config = tmp_path / "small-budget.yaml"
    config.write_text(yaml.safe_dump(data))
    code, out, line = _cli(["cube", str(config)], capsys)
    assert code == 2 and "compute.max_run_gib" in line and "raise" in line
    assert "128 x 128 px" in line and "GiB in" in line and out == ""  # the estimate, one line
    size = stages.size(parse_config(data), stages.search(parse_config(data)))
    assert (size.bytes_in + size.bytes_out) / GIB > budget
