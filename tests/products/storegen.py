"""Write small fused stores in the documented layout (docs/CONTRACTS.md) from arrays.

This is the products' input format; the tests build it directly so they do not depend
on a fusion run. Fields are squares of ``field_px`` pixels; each class has its own
double-logistic NDVI season, so crop types are separable from the time series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

EPSG = 32632
X0, Y0, RES = 600_000.0, 5_000_000.0, 30.0
#: (green-up, senescence) day index of each class's season.
SEASONS = {0: (30, 100), 1: (60, 140), 2: (90, 170)}


def double_logistic(
    t: np.ndarray, sos: float, eos: float, lo: float = 0.15, hi: float = 0.8
) -> np.ndarray:
    """NDVI season: rises around ``sos``, falls around ``eos`` (days); floor ``lo``, top ``hi``."""
    rate = 0.15
    return lo + (hi - lo) * (
        1 / (1 + np.exp(-rate * (t - sos))) - 1 / (1 + np.exp(-rate * (t - eos)))
    )


def field_layout(ny: int, nx: int, field_px: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(field id (y, x) int32, class id per field (n_fields,) int) on a square grid of fields."""
    rng = np.random.default_rng(seed)
    fy, fx = np.indices((ny, nx)) // field_px
    fid = (fy * -(-nx // field_px) + fx).astype(np.int32)
    return fid, rng.integers(0, len(SEASONS), fid.max() + 1)


def write_store(
    path: Path,
    ny: int = 24,
    nx: int = 24,
    n_days: int = 200,
    field_px: int = 6,
    seed: int = 0,
    drop: tuple[str, ...] = (),
) -> Path:
    """A fused store: red/nir/green from per-class NDVI seasons + noise; Landsat every 8 days."""
    rng = np.random.default_rng(seed)
    fid, cls = field_layout(ny, nx, field_px, seed)
    t = np.arange(n_days, dtype=float)
    curves = np.stack(
        [double_logistic(t, *SEASONS[c]) for c in range(len(SEASONS))]
    )  # (class, time)
    nd = curves[cls[fid]].transpose(2, 0, 1) + rng.normal(0, 0.02, (n_days, ny, nx))
    red = np.clip(0.08 * (1 - nd) + 0.02, 0, 1)
    nir = red * (1 + nd) / (1 - nd)
    green = 0.5 * (red + 0.05)
    obs_day = (np.arange(n_days) % 8 == 0)[:, None, None] & (rng.random((n_days, ny, nx)) > 0.3)
    quality = np.where(obs_day, 1, 2).astype(np.uint8)
    dist = np.minimum(np.arange(n_days) % 16, 16 - np.arange(n_days) % 16).astype(np.int16)
    ref = np.broadcast_to(dist[:, None, None], (n_days, ny, nx))
    data = {"red": red, "nir": nir, "green": green}
    enc = {"scale_factor": 1e-4, "_FillValue": -32768, "dtype": "int16"}
    ds = xr.Dataset(
        {k: (("time", "y", "x"), v.astype(np.float32)) for k, v in data.items()}
        | {
            "quality": (("time", "y", "x"), quality),
            "ref_before_days": (("time", "y", "x"), ref.astype(np.int16)),
            "ref_after_days": (("time", "y", "x"), ref.astype(np.int16)),
        },
        coords={
            "time": pd.date_range("2024-03-01", periods=n_days, freq="D"),
            "y": Y0 - RES * (np.arange(ny) + 0.5),
            "x": X0 + RES * (np.arange(nx) + 0.5),
        },
    )
    ds = ds.drop_vars(list(drop)).rio.write_crs(EPSG)
    ds.to_zarr(path, mode="w", consolidated=True, encoding={k: enc for k in data if k not in drop})
    return path


def write_fields(
    path: Path, ny: int = 24, nx: int = 24, field_px: int = 6, seed: int = 0, epsg: int = EPSG
) -> Path:
    """The store's fields as GeoParquet polygons with ``field_id`` and ``crop`` names."""
    import geopandas as gpd
    from shapely.geometry import box

    _, cls = field_layout(ny, nx, field_px, seed)
    n_fx = -(-nx // field_px)
    rows = []
    for f, c in enumerate(cls):
        fy, fx = divmod(f, n_fx)
        x0, y1 = X0 + fx * field_px * RES, Y0 - fy * field_px * RES
        rows.append(
            {
                "field_id": f,
                "crop": f"crop{c}",
                "geometry": box(x0, y1 - field_px * RES, x0 + field_px * RES, y1),
            }
        )
    gdf = gpd.GeoDataFrame(rows, crs=EPSG)
    if epsg != EPSG:
        gdf = gdf.to_crs(epsg)
    gdf.to_parquet(path)
    return path
