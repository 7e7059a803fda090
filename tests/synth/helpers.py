"""Readers shared by the synth tests: items of the built world and decoded assets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from pipeline.synth import World


def world_items(world: World, collection: str) -> list[dict[str, Any]]:
    """The STAC item dicts of ``collection`` as written by build_world."""
    return json.loads((world.stac_dir / collection / "items.json").read_text())["features"]


def read_asset(item: dict[str, Any], key: str) -> np.ndarray:
    """The single band of asset ``key`` (a file:// href) as stored, (y, x)."""
    with rasterio.open(Path(item["assets"][key]["href"].removeprefix("file://"))) as src:
        return src.read(1)
