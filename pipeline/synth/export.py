"""Export a few dates of the demo world as fine/coarse GeoTIFF pairs plus a YAML manifest.

The manifest is what the model-evaluation tools read::

    name: synthetic
    bands: [green, red, nir]
    fine: {scale: 0.0001}
    coarse: {scale: 0.0001}
    ratio: 16
    dates:
    - {date: 2024-06-08, fine: fine_20240608.tif, coarse: coarse_20240608.tif}
    predict: 2024-06-16
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import yaml

from pipeline.config import BANDS
from pipeline.errors import InputError
from pipeline.synth.grid import Grid, coarse_grid
from pipeline.synth.modis_sim import coarse_blocks, shift_px
from pipeline.synth.sensors_sim import landsat_noise
from pipeline.synth.spec import COARSE_FACTOR
from pipeline.synth.world import World

#: DN = round(reflectance / SCALE), int16, for both fine and coarse files.
SCALE = 1e-4
_EXPORT_STREAM = 3


def export_manifest(
    world: World,
    out_dir: Path,
    dates: Sequence[dt.date] | None = None,
    bands: Sequence[str] = BANDS,
) -> Path:
    """Write clear fine (30 m) and coarse (480 m) GeoTIFFs for ``dates`` and a manifest.

    The coarse files carry the world's MODIS sensor model (PSF, misregistration
    ``spec.modis_shift_m``, gain/bias, noise), not exact block means of the truth.

    Parameters
    ----------
    world : a built demo world.
    out_dir : created if missing; receives ``fine_YYYYMMDD.tif``, ``coarse_YYYYMMDD.tif``,
        ``manifest.yaml``.
    dates : at least 3 days of the season (default: the first three Landsat dates); the
        middle one is the date to predict.
    bands : canonical band names to export, in this order.

    Returns
    -------
    Path of ``manifest.yaml``. Files are int16 (band, y, x), reflectance = DN x 1e-4.
    """
    dates = sorted(dates) if dates is not None else world.landsat_dates()[:3]
    _check(world, dates, bands)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    idx = tuple(BANDS.index(b) for b in bands)
    coarse = coarse_grid(world.grid)
    entries = []
    for day in dates:
        truth = world.truth(day)
        rng = np.random.default_rng([world.spec.seed, _EXPORT_STREAM, day.toordinal()])
        fine_name, coarse_name = f"fine_{day:%Y%m%d}.tif", f"coarse_{day:%Y%m%d}.tif"
        _write(out_dir / fine_name, landsat_noise(truth[list(idx)], rng), world.grid)
        shift = shift_px(world.spec.modis_shift_m)
        _write(out_dir / coarse_name, coarse_blocks(truth, COARSE_FACTOR, idx, shift, rng), coarse)
        entries.append({"date": day, "fine": fine_name, "coarse": coarse_name})
    manifest = {
        "name": "synthetic",
        "bands": list(bands),
        "fine": {"scale": SCALE},
        "coarse": {"scale": SCALE},
        "ratio": COARSE_FACTOR,
        "dates": entries,
        "predict": dates[len(dates) // 2],
    }
    path = out_dir / "manifest.yaml"
    # Dates stay YAML dates (unquoted YYYY-MM-DD) as the manifest format shows.
    path.write_text(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None))
    return path


def _check(world: World, dates: Sequence[dt.date], bands: Sequence[str]) -> None:
    unknown = [b for b in bands if b not in BANDS]
    if unknown or not bands:
        raise InputError(f"unknown or no bands {unknown}; choose from {list(BANDS)}")
    if len(dates) < 3:
        raise InputError(
            f"give at least 3 dates to export (got {len(dates)}): two pairs and one to predict"
        )
    outside = [d for d in dates if not world.spec.start <= d <= world.spec.end]
    if outside:
        raise InputError(
            f"dates {outside} lie outside the season {world.spec.start}..{world.spec.end}"
        )


def _write(path: Path, refl: np.ndarray, grid: Grid) -> None:
    dn = np.clip(np.round(refl / SCALE), -32767, 32767).astype(np.int16)
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": dn.shape[0],
        "dtype": "int16",
        "crs": grid.crs,
        "transform": grid.transform,
        "tiled": True,
        "blockxsize": 16 if grid.width < 256 else 256,
        "blockysize": 16 if grid.height < 256 else 256,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
