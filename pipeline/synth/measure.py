"""Measure a built world with the statistics of :mod:`pipeline.synth.stats`.

``python -m pipeline.synth.measure ROOT`` prints them as JSON; the calibration test
and ``pipeline/synth/CALIBRATION.md`` compare them with the real sets.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.warp
from rasterio.enums import Resampling

from pipeline import sensors as s
from pipeline.synth import stats
from pipeline.synth.grid import modis_window
from pipeline.synth.modis_sim import MODIS_FILL, shift_px
from pipeline.synth.sensors_sim import landsat_noise
from pipeline.synth.world import LANDSAT_COLLECTION, MODIS_COLLECTION, World, open_world

_RED, _NIR, _BLUE = 2, 3, 0
#: Above this |Landsat - truth| (blue, reflectance; ~4 sd of the sensor noise) a pixel the
#: QA calls clear counts as contamination the QA missed.
_MISSED_BLUE = 0.012


def items(world: World, collection: str) -> list[dict[str, Any]]:
    """The STAC item dicts of ``collection`` as written by build_world."""
    path = world.stac_dir / collection / "items.json"
    return json.loads(path.read_text())["features"]


def read(item: dict[str, Any], key: str) -> np.ndarray:
    """The single band of asset ``key`` (a file:// href) as stored, (y, x)."""
    with rasterio.open(Path(item["assets"][key]["href"].removeprefix("file://"))) as src:
        return src.read(1)


def _day(item: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(item["properties"]["datetime"][:10])


def cloud_statistics(world: World) -> dict[str, float]:
    """Scene cloud cover of both sensors: distribution, persistence and same-day tie."""
    land = {_day(i): i["properties"]["eo:cloud_cover"] for i in items(world, LANDSAT_COLLECTION)}
    modis = {_day(i): i["properties"]["eo:cloud_cover"] for i in items(world, MODIS_COLLECTION)}
    lc, mc = np.array(list(land.values())), np.array(list(modis.values()))
    same = np.array([modis[d] for d in land])
    out = {
        "landsat_cover_mean": float(lc.mean()),
        "landsat_share_below_10": float(np.mean(lc < 10)),
        "landsat_share_above_90": float(np.mean(lc > 90)),
        "modis_cover_mean": float(mc.mean()),
        "modis_cover_min": float(mc.min()),
        "modis_cover_lag1": float(np.corrcoef(mc[:-1], mc[1:])[0, 1]),
    }
    if len(lc) > 2 and lc.std() > 0 and same.std() > 0:
        out["landsat_modis_cover_r2"] = float(np.corrcoef(lc, same)[0, 1] ** 2)
    return out


def qa_missed_share(world: World) -> float:
    """Share of QA-clear Landsat pixels (scenes with clouds) whose blue is contaminated."""
    missed, clear = 0, 0
    for item in items(world, LANDSAT_COLLECTION):
        if item["properties"]["eo:cloud_cover"] <= 0:
            continue
        qa = read(item, "qa_pixel")
        ok = ~s.LANDSAT_C2_L2.invalid_from_qa(qa)
        blue = s.LANDSAT_C2_L2.to_reflectance(read(item, "blue"))
        err = np.abs(blue - world.truth(_day(item))[_BLUE])
        missed += int((ok & (err > _MISSED_BLUE)).sum())
        clear += int(ok.sum())
    return missed / max(clear, 1)


def modis_fit(world: World, search: bool) -> dict[str, float]:
    """MODIS vs truth on the clearest MODIS day: shift found (px) and the aligned 480 m fit."""
    item = min(items(world, MODIS_COLLECTION), key=lambda i: i["properties"]["eo:cloud_cover"])
    truth = world.truth(_day(item))
    out: dict[str, float] = {"modis_fit_cover": item["properties"]["eo:cloud_cover"]}
    for canon, key, name in ((_RED, 1, "red"), (_NIR, 2, "nir")):
        coarse = _modis_on_world(world, read(item, f"Nadir_Reflectance_Band{key}"))
        dy, dx = shift_px(world.spec.modis_shift_m)
        if search:
            dy, dx = stats.best_shift(truth[canon], np.nan_to_num(coarse, nan=np.nanmean(coarse)))
            out["modis_shift_rows"], out["modis_shift_cols"] = float(dy), float(dx)
        m = 24
        h, w = truth.shape[1:]
        fine = truth[canon][m : h - m, m : w - m]
        c = coarse[m + dy : h - m + dy, m + dx : w - m + dx]
        fit = stats.coarse_fit(fine, c)
        out |= {f"modis_{name}_{k}": v for k, v in fit.items()}
    return out


def _modis_on_world(world: World, dn: np.ndarray) -> np.ndarray:
    """A MODIS band (int16 DN) nearest-resampled onto the 30 m world grid, NaN = fill."""
    refl = np.where(dn == MODIS_FILL, np.nan, dn * 1e-4).astype(np.float32)
    out = np.full(world.grid.shape, np.nan, dtype=np.float32)
    window = modis_window(world.grid)
    rasterio.warp.reproject(
        refl,
        out,
        src_transform=window.transform,
        src_crs=window.crs,
        dst_transform=world.grid.transform,
        dst_crs=world.grid.crs,
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return out


def land_statistics(world: World) -> dict[str, float]:
    """Edges, red-NIR correlation, NIR/NDVI ranges and sub-480 m change, from the truth."""
    dates = world.landsat_dates()
    peak = max(dates, key=lambda d: np.nanmean(_ndvi(world.truth(d))))
    truth = world.truth(peak)
    nd = _ndvi(truth)
    out = {
        "edge_index_nir": stats.edge_index(truth[_NIR]),
        "red_nir_r": stats.red_nir_correlation(truth[_RED], truth[_NIR]),
        "nir_p99": float(np.percentile(truth[_NIR], 99)),
        "ndvi_p99": float(np.nanpercentile(nd, 99)),
    }
    rng = np.random.default_rng(0)
    shares = []
    for a, b in zip(dates[:-2], dates[2:], strict=True):
        before = landsat_noise(world.truth(a)[_NIR], rng)
        after = landsat_noise(world.truth(b)[_NIR], rng)
        shares.append(stats.sub_coarse_change_share(before, after))
    out["sub_coarse_change_median"] = float(np.median(shares))
    out["sub_coarse_change_min"], out["sub_coarse_change_max"] = min(shares), max(shares)
    return out


def _ndvi(truth: np.ndarray) -> np.ndarray:
    return stats.ndvi(truth[_RED], truth[_NIR])


def world_statistics(world: World) -> dict[str, float]:
    """Every calibration statistic of a built world (seconds at 256 px, one season)."""
    big = min(world.spec.width, world.spec.height) >= 256
    return {
        **cloud_statistics(world),
        "qa_missed_share": qa_missed_share(world),
        **modis_fit(world, search=big),
        **land_statistics(world),
    }


if __name__ == "__main__":
    print(json.dumps(world_statistics(open_world(Path(sys.argv[1]))), indent=1))
