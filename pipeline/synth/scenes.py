"""Write every Landsat-like and MODIS-like scene of a world as COGs plus their STAC items."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from pipeline.synth import grid as g
from pipeline.synth import items
from pipeline.synth.clouds import cloudy
from pipeline.synth.cog import StripCog, write_cog
from pipeline.synth.landscape import Landscape
from pipeline.synth.modis_psf import ModisStrips
from pipeline.synth.modis_sim import (
    MODIS_FILL,
    MODIS_QA_FILL,
    finish_scene,
    inside_world,
    modis_bands,
)
from pipeline.synth.reflectance import day_spectra, truth_rows
from pipeline.synth.sensors_sim import landsat_mask_halo, landsat_masks, landsat_rows
from pipeline.synth.spec import WorldSpec
from pipeline.synth.strips import strip_plan
from pipeline.synth.weather import Sky, daily_skies

#: A real Landsat 8 acquisition over WRS-2 path 192 row 029 (Po valley); Landsat 9 flies
#: 8 days out of phase, so the pair revisits every 8 days, alternating.
_LANDSAT_ANCHOR = dt.date(2024, 4, 5)
_LANDSAT_TIME = dt.time(10, 2, 31, 512000)
_WRS = (192, 29)
_LANDSAT_KEYS = ("blue", "green", "red", "nir08", "swir16", "swir22")
_LANDSAT_FILES = {"blue": "SR_B2", "green": "SR_B3", "red": "SR_B4", "nir08": "SR_B5"}
_LANDSAT_FILES |= {"swir16": "SR_B6", "swir22": "SR_B7", "qa_pixel": "QA_PIXEL"}
# Independent random streams per sensor, keyed by date so extending the season keeps
# older scenes byte-identical.
_LANDSAT_STREAM, _MODIS_STREAM = 1, 2
#: GDAL block cache while scenes are written, MB.
GDAL_CACHE_MB = 64


def landsat_schedule(spec: WorldSpec) -> list[tuple[dt.date, str]]:
    """(date, platform) of every Landsat-like acquisition in the season."""
    step = spec.landsat_interval_days
    first = -((_LANDSAT_ANCHOR - spec.start).days // step)
    out = []
    k = first
    while (day := _LANDSAT_ANCHOR + dt.timedelta(days=k * step)) <= spec.end:
        if day >= spec.start:
            out.append((day, "landsat-8" if k % 2 == 0 else "landsat-9"))
        k += 1
    return out


def write_scenes(
    tmp: Path, final_root: Path, spec: WorldSpec, land: Landscape, world: g.Grid
) -> None:
    """Write all scenes and the STAC catalog into ``tmp``; hrefs point into ``final_root``.

    One day at a time and, within a day, one strip of rows at a time (:mod:`strips`):
    the strip's truth and sky feed the Landsat COGs (windowed writes) and the day's
    MODIS sums, so memory follows neither the season's length nor the world's area.
    """
    target = _Target(tmp, final_root, world, g.modis_window(world))
    landsat_days = dict(landsat_schedule(spec))
    landsat_items, modis_items = [], []
    # GDAL's block cache (default 5 % of RAM) would hold every written block of a scene's
    # seven COGs until they close: bounded, it flushes them as the strips come.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        for sky in daily_skies(spec.sky_seed, spec.days(), world.shape, spec.cloudiness):
            scene = (
                _LandsatScene(sky.day, landsat_days[sky.day]) if sky.day in landsat_days else None
            )
            landsat_item, modis_item = _write_day(target, spec, land, sky, scene)
            landsat_items += [landsat_item] if landsat_item is not None else []
            modis_items.append(modis_item)
    stac, bbox = tmp / "stac", target.bbox
    _write_collection(stac, items.landsat_collection(bbox, spec.start, spec.end), landsat_items)
    _write_collection(stac, items.modis_43a4_collection(bbox, spec.start, spec.end), modis_items)


@dataclass(frozen=True)
class _Target:
    """Where a world's scenes go: folders, the 30 m grid and the MODIS window."""

    tmp: Path
    final_root: Path
    world: g.Grid
    window: g.Grid

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        return g.lonlat_bbox(self.world)

    @cached_property
    def inside(self) -> np.ndarray:
        return inside_world(self.world, self.window)

    @cached_property
    def tile(self) -> tuple[int, int]:
        return g.modis_tile(self.world)


def _write_day(
    target: _Target, spec: WorldSpec, land: Landscape, sky: Sky, scene: _LandsatScene | None
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Simulate and write one day strip by strip: (Landsat item or None, MODIS item)."""
    day, world = sky.day, target.world
    landsat = _LandsatWriter(target.tmp, target.final_root, scene, world) if scene else None
    modis = ModisStrips(world, target.window, spec.modis_shift_m)
    spectra = day_spectra(land, day)
    for r0, r1 in strip_plan(world.height, world.width):
        lo, hi = modis.fine_rows(r0, r1)
        truth = truth_rows(land, spectra, lo, hi)
        modis.add(r0, r1, lo, truth, cloudy(sky.rows(lo, hi), sky.cover, sky.threshold))
        if landsat is not None:
            key = (spec.seed, _LANDSAT_STREAM, day.toordinal())
            landsat.add(r0, r1, truth[:, r0 - lo : r1 - lo], land, sky, key)
    landsat_item = None
    if landsat is not None and scene is not None:
        hrefs, cover = landsat.close()
        landsat_item = items.landsat_item(
            scene.item_id, scene.when, scene.platform, world, target.bbox, cover, hrefs, _WRS
        )
    rng = np.random.default_rng([spec.seed, _MODIS_STREAM, day.toordinal()])
    dn, qa, cover = finish_scene(*modis_bands(modis.result()), rng, target.inside)
    tile = target.tile
    item_id = f"MCD43A4.A{day.year}{day.timetuple().tm_yday:03d}.h{tile[0]:02d}v{tile[1]:02d}.061"
    hrefs = _write_modis(target.tmp, target.final_root, item_id, dn, qa, target.window)
    bbox = target.bbox
    return landsat_item, items.modis_43a4_item(
        item_id, day, tile, target.window, bbox, cover, hrefs
    )


class _LandsatWriter:
    """The seven COGs of one Landsat scene, filled a strip of rows at a time."""

    def __init__(self, tmp: Path, final_root: Path, scene: _LandsatScene, world: g.Grid) -> None:
        rel = Path("data", "landsat", scene.product_id)
        names = {k: f"{scene.product_id}_{f}.TIF" for k, f in _LANDSAT_FILES.items()}
        self.files = {
            k: StripCog(tmp / rel / n, world, "uint16", nodata=1 if k == "qa_pixel" else 0)
            for k, n in names.items()
        }
        self.hrefs = {k: (final_root / rel / n).as_uri() for k, n in names.items()}
        self.flagged, self.pixels = 0, world.width * world.height

    def add(
        self,
        r0: int,
        r1: int,
        truth: np.ndarray,
        land: Landscape,
        sky: Sky,
        key: tuple[int, ...],
    ) -> None:
        """Simulate and write world rows ``r0..r1`` from their truth (band, rows, x)."""
        halo = landsat_mask_halo()
        m0, m1 = max(0, r0 - halo), min(land.height, r1 + halo)
        masks = landsat_masks(sky.rows(m0, m1), sky.cover, sky.threshold).rows(r0 - m0, r1 - m0)
        labels = land.classes[land.layers(r0, r1).parcel]
        dn, qa = landsat_rows(truth, labels, masks, key, r0)
        for k, band in zip(_LANDSAT_KEYS, dn, strict=True):
            self.files[k].write(r0, band)
        self.files["qa_pixel"].write(r0, qa)
        self.flagged += int(np.count_nonzero(masks.cloud | masks.cirrus))

    def close(self) -> tuple[dict[str, str], float]:
        """Finish the COGs: (asset hrefs, percent of the scene flagged cloud or cirrus)."""
        for f in self.files.values():
            f.close()
        return self.hrefs, 100.0 * self.flagged / self.pixels


class _LandsatScene:
    """Ids of one acquisition, formatted like the real Collection 2 products."""

    def __init__(self, day: dt.date, platform: str) -> None:
        self.platform = platform
        self.when = dt.datetime.combine(day, _LANDSAT_TIME)
        mission = platform[-1]
        stamp = day.strftime("%Y%m%d")
        processed = (day + dt.timedelta(days=7)).strftime("%Y%m%d")
        path_row = f"{_WRS[0]:03d}{_WRS[1]:03d}"
        self.item_id = f"LC0{mission}_L2SP_{path_row}_{stamp}_02_T1"
        self.product_id = f"LC0{mission}_L2SP_{path_row}_{stamp}_{processed}_02_T1"


def _write_modis(
    tmp: Path, final_root: Path, item_id: str, dn: np.ndarray, qa: np.ndarray, window: g.Grid
) -> dict[str, str]:
    rel = Path("data", "modis", item_id)
    hrefs = {}
    for n in range(1, 8):
        key = f"Nadir_Reflectance_Band{n}"
        write_cog(
            tmp / rel / f"{item_id}_{key}.tif", dn[n - 1], window, nodata=MODIS_FILL, blocksize=16
        )
        hrefs[key] = (final_root / rel / f"{item_id}_{key}.tif").as_uri()
    # The simulated quality is the same for all bands: one file serves the 7 QA assets.
    name = f"{item_id}_BRDF_Albedo_Band_Mandatory_Quality.tif"
    write_cog(tmp / rel / name, qa, window, nodata=MODIS_QA_FILL, blocksize=16)
    for n in range(1, 8):
        hrefs[f"BRDF_Albedo_Band_Mandatory_Quality_Band{n}"] = (final_root / rel / name).as_uri()
    return hrefs


def _write_collection(
    stac: Path, collection: dict[str, Any], features: list[dict[str, Any]]
) -> None:
    folder = stac / collection["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collection.json").write_text(json.dumps(collection, indent=1))
    feature_collection = {"type": "FeatureCollection", "features": features}
    (folder / "items.json").write_text(json.dumps(feature_collection))
