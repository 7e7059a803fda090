"""The regional run on Prefect's test server: a first run, then an incremental one.

The tiny demo world is served as a STAC API; the second run serves the same world
grown to a later season end (same seed: older scenes byte-identical; that grown world
is the session's ``tiny_world``), so the flow must extend the store, re-fuse only the
days after the previous last pair, and leave every earlier day bit-identical.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from flows.incremental import plan_window
from flows.regions import REGIONS_DIR, load_region
from pipeline.catalog.server import serve_catalog
from pipeline.store.write import DONE, open_store
from pipeline.synth import World, WorldSpec, build_world

pytestmark = pytest.mark.slow

#: The stage API the flow's tasks call (flows/tasks.py), the same that pipeline.run composes.
STEPS = ("search", "cubes", "model", "fuse", "products")
FIRST_END = dt.date(2024, 6, 22)
SECOND_END = dt.date(2024, 7, 5)
#: The last Landsat pair of the tiny world through SECOND_END (every 8 days from 2024-06-08).
LAST_PAIR = np.datetime64("2024-07-02")


def _require_step_api() -> None:
    try:
        engine = importlib.import_module("pipeline.stages")
    except ImportError:
        pytest.skip("pipeline.stages (the stage API) is not in the tree yet")
    missing = [name for name in STEPS if not hasattr(engine, name)]
    if missing:
        pytest.skip(
            f"pipeline.stages lacks the stage functions {missing} that flows/tasks.py calls"
        )


def _inset(bbox: tuple[float, float, float, float], metres: float = 100) -> list[float]:
    """``bbox`` (degrees, near 45 N) shrunk by ``metres`` on each side.

    The grid snaps outward to whole coarse cells: the world's own lon/lat box gives a
    grid one cell wider on every side, whose edge blocks are mostly outside the world
    and never get a usable pair (provisional forever). Inset, the grid is the world's.
    """
    dlat = metres / 111_320
    dlon = dlat / math.cos(math.radians((bbox[1] + bbox[3]) / 2))
    west, south, east, north = bbox
    return [west + dlon, south + dlat, east - dlon, north - dlat]


def _region_file(tmp: Path, bbox: tuple[float, float, float, float], url: str) -> Path:
    data = yaml.safe_load((REGIONS_DIR / "demo.yaml").read_text())
    data.update(
        region={"name": "demo-tiny", "bbox": _inset(bbox)},
        time={"start": "2024-06-01", "end": SECOND_END.isoformat(), "search_margin_days": 16},
        stac={"url": url},
        model={"name": "starfm", "size": "tiny"},
        chunks={"y": 48, "x": 48, "time": 16},
        compute={"n_workers": 1},  # one worker process to start per run: the world is tiny
        products={"ndvi": True, "feeds": False},
        output_root=str(tmp / "out"),
    )
    path = tmp / "demo-tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(tmp: Path, world: World, url: str, until: dt.date) -> Path:
    from flows.regional_run import regional_run

    region_file = _region_file(tmp, world.bbox, url)
    regional_run(str(region_file), until=until)
    return region_file


def test_incremental_run_extends_the_store_and_keeps_old_days(
    harness: None, tiny_world: World, stac_url: str, tmp_path: Path
) -> None:
    _require_step_api()
    assert tiny_world.spec == WorldSpec.tiny(end=SECOND_END)  # the grown world
    young = build_world(tmp_path / "world", WorldSpec.tiny(end=FIRST_END))
    with serve_catalog(young.stac_dir) as url:
        region_file = _run(tmp_path, young, url, FIRST_END)
    region = load_region(region_file)
    store = str(region.config.output_root / region.config.store.path)
    first = open_store(store).load()
    assert first.sizes["time"] == (FIRST_END - dt.date(2024, 6, 1)).days + 1
    window = plan_window(region.config, SECOND_END)
    assert window is not None
    kept = first.sel(time=slice(None, np.datetime64(window.start - dt.timedelta(days=1))))

    _run(tmp_path, tiny_world, stac_url, SECOND_END)
    second = open_store(store).load()
    assert second.sizes["time"] == (SECOND_END - dt.date(2024, 6, 1)).days + 1
    assert kept.sizes["time"] > 0
    for name in kept.data_vars:
        old = kept[name].values
        new = second[name].sel(time=kept["time"]).values
        assert old.tobytes() == new.tobytes(), f"{name} changed on days before {window.start}"
    # the provisional days were re-fused: with the newer scenes they now lie before a pair
    refused = second["block_done"].sel(time=slice(np.datetime64(window.start), LAST_PAIR))
    assert refused.sizes["time"] > 0 and bool((refused == DONE).all())
