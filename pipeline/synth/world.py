"""Build (once) and open the demo world: truth generator state, COG scenes, STAC catalog.

Layout under ``root``::

    world.json                 marker written last: spec + generator version
    truth/landscape.npz        generator state from which every truth day is regenerated
    truth/{parcel,texture,shade}.npy  its per-pixel layers, read a strip of rows at a time
    truth/fields.parquet       field polygons (GeoParquet, UTM) with class names
    data/landsat/<id>/*.TIF    Landsat-like COGs;  data/modis/<id>/*.tif  MODIS-like COGs
    stac/<collection>/collection.json, stac/<collection>/items.json (FeatureCollection)

The truth is never part of the STAC catalog.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import InputError
from pipeline.synth import grid as g
from pipeline.synth.fields import write_fields
from pipeline.synth.landscape import Landscape, make_landscape
from pipeline.synth.phenology import CLASS_NAMES
from pipeline.synth.reflectance import truth_day
from pipeline.synth.scenes import landsat_schedule, write_scenes
from pipeline.synth.spec import GENERATOR_VERSION, WorldSpec

if TYPE_CHECKING:
    import geopandas as gpd

MARKER = "world.json"
LANDSAT_COLLECTION = "landsat-c2-l2"
MODIS_COLLECTION = "modis-43A4-061"


@dataclass(frozen=True)
class World:
    """A built demo world on disk (see the module docstring for the layout)."""

    root: Path
    spec: WorldSpec

    @property
    def stac_dir(self) -> Path:
        """Directory holding ``<collection>/collection.json`` and ``<collection>/items.json``."""
        return self.root / "stac"

    @property
    def truth_dir(self) -> Path:
        """Directory of the generator state (never served)."""
        return self.root / "truth"

    @cached_property
    def grid(self) -> g.Grid:
        """The 30 m UTM world grid."""
        return g.world_grid(self.spec)

    @property
    def epsg(self) -> int:
        """EPSG code of the UTM world grid."""
        return self.spec.epsg

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """[west, south, east, north] of the world in degrees."""
        return g.lonlat_bbox(self.grid)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the class ids of :meth:`labels` (index = id)."""
        return CLASS_NAMES

    @cached_property
    def landscape(self) -> Landscape:
        """The generator state (parcels, classes, per-field parameters, texture)."""
        return Landscape.load(self.truth_dir)

    def labels(self) -> np.ndarray:
        """(y, x) uint8 land-cover / crop class id of each 30 m pixel."""
        return self.landscape.labels()

    def truth(self, date: dt.date) -> np.ndarray:
        """Noise-free, cloud-free reflectance on ``date``: (band, y, x) float32 in [0, 1].

        Bands are :data:`pipeline.config.BANDS` (blue, green, red, nir, swir1, swir2);
        regenerated deterministically in ~40 ms at full size.
        """
        return truth_day(self.landscape, date)

    @cached_property
    def fields(self) -> gpd.GeoDataFrame:
        """Field polygons in the UTM CRS: columns ``field_id``, ``class_id``, ``class_name``."""
        import geopandas as gpd

        return gpd.read_parquet(self.truth_dir / "fields.parquet")

    def landsat_dates(self) -> list[dt.date]:
        """Acquisition dates of the Landsat-like scenes."""
        return [d for d, _ in landsat_schedule(self.spec)]

    def modis_dates(self) -> list[dt.date]:
        """Days of the daily MODIS-like scenes (the whole season)."""
        return self.spec.days()


def open_world(root: Path) -> World:
    """The complete world at ``root``; InputError if there is none."""
    marker = _read_marker(root)
    if marker is None:
        raise InputError(
            f"no complete demo world at {root}; run `stf catalog build-demo --root {root}`"
        )
    if marker.get("generator_version") != GENERATOR_VERSION:
        raise InputError(
            f"the demo world at {root} was built by another generator version; "
            f"delete it and run `stf catalog build-demo --root {root}`"
        )
    return World(root, WorldSpec.from_dict(marker["spec"]))


def build_world(root: Path, spec: WorldSpec | None = None) -> World:
    """Build the demo world at ``root`` (or reuse it when already complete with the same spec).

    Everything is written to a temporary sibling directory that replaces ``root`` only
    when complete, so a half-built world is never used. Same spec -> same bytes.
    """
    spec = spec or WorldSpec()
    root = Path(root).expanduser().resolve()
    marker = _read_marker(root)
    if marker is not None and marker == _marker(spec):
        return World(root, spec)
    tmp = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_world(tmp, root, spec)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace(tmp, root)
    return World(root, spec)


def _write_world(tmp: Path, final_root: Path, spec: WorldSpec) -> None:
    world_grid = g.world_grid(spec)
    land = make_landscape(spec.height, spec.width, np.random.default_rng([spec.seed, 0]))
    (tmp / "truth").mkdir()
    # From here on the per-pixel layers are read back from disk a strip at a time.
    land = land.save(tmp / "truth")
    write_fields(tmp / "truth" / "fields.parquet", land, world_grid)
    write_scenes(tmp, final_root, spec, land, world_grid)
    (tmp / MARKER).write_text(json.dumps(_marker(spec), indent=2))


def _marker(spec: WorldSpec) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "spec": spec.to_dict()}


def _read_marker(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _replace(tmp: Path, root: Path) -> None:
    """Swap the finished ``tmp`` into ``root`` (renames on one filesystem)."""
    old = root.parent / f".{root.name}.old-{os.getpid()}"
    if root.exists():
        root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)
