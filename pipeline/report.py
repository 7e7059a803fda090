"""``stf demo``: the whole chain on the embedded demo world, then a report against its truth.

The demo uses ``configs/demo.yaml`` (region = the demo world) with a small, fast
setting so it finishes in a few minutes on 2 cores: STARFM with a 5 x 5
window (the fields are many pixels wide), three bands (green, red, nir: enough
for NDVI), 45 days of early summer.
The report (``<out>/report/``) holds:

* ``metrics.json``: RMSE/SSIM/CC/UIQI/PSNR per band, SAM and ERGAS, on days
  without a Landsat scene, against the noise-free synthetic truth
  (:meth:`pipeline.synth.World.truth`), with the metrics' convention string;
* ``maps.png``: truth vs fused NDVI (and their difference) on two such days;
* ``ndvi_timeseries.png``: NDVI of a few fields over the season, fused vs
  truth vs the clear Landsat observations;
* ``flags.png``: the quality flags on the map days and each flag's share of the
  in-coverage pixels per day (observed, fused, filled, gap); ``metrics.json``
  ``"seamless"`` holds the shares of in-coverage pixel-days with a finite value
  and uncertainty (pixels flagged outside coverage are excluded from every figure);
* ``reliability.png``: predicted sigma vs observed RMSE (equal-count bins) of the
  fused and filled pixel-days, and ``metrics.json`` ``"calibration"``:
  ``within_1sigma`` / ``within_2sigma`` = shares of band-pixel-days with
  ``|fused - truth| <= sigma`` / ``2 sigma`` on the withheld days (days without a
  Landsat scene, never seen by the run; the sigma was fitted on pair dates only),
  per flag under ``by_flag``, and ``spearman``: per flag, the rank correlation of
  sigma with the absolute error (does the sigma rank the errors).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.config import BANDS, RunConfig, load_config

#: What the demo changes in configs/demo.yaml to stay fast on a laptop.
DEMO_OVERRIDES: dict[str, Any] = {
    "time": {"start": "2024-06-01", "end": "2024-07-15", "search_margin_days": 24},
    "bands": ["green", "red", "nir"],
    "model": {"name": "starfm", "size": "tiny", "params": {"window": 5}},
    "compute": {"n_workers": 2, "threads_per_worker": 1, "batch_days": 8},
    # the demo grid is 544 px (the world snapped out to whole 480 m cells): 2 x 2 even blocks
    "chunks": {"y": 272, "x": 272, "time": 366},
}


#: ``stf demo --season``: the whole growing season of the demo world (184 days).
SEASON: dict[str, str] = {"start": "2024-04-15", "end": "2024-10-15"}


def demo_config(out: Path, season: bool = False) -> RunConfig:
    """``configs/demo.yaml`` with :data:`DEMO_OVERRIDES`, writing under ``out``.

    ``season`` replaces the 45 days by :data:`SEASON` (same model, bands and chunks).
    """
    path = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    from pipeline.demo import demo_world_root

    cfg = load_config(path)
    # every product step runs on the demo, with the world's field polygons as crop labels
    labels = demo_world_root() / "truth" / "fields.parquet"
    products = {"ndvi": True, "phenology": True, "cropmap": True, "feeds": True, "labels": labels}
    overrides = dict(DEMO_OVERRIDES)
    if season:
        overrides["time"] = {**overrides["time"], **SEASON}
    return cfg.with_updates(
        **overrides, output_root=str(out), store={"path": "fusion.zarr"}, products=products
    )


def _overlap(n: int, start: int, size: int) -> tuple[slice, slice]:
    """(store, world) index slices where store index i is world index i + start, 0 <= it < size."""
    lo, hi = max(0, -start), min(n, size - start)
    return slice(lo, hi), slice(lo + start, hi + start)


def crop_to_world(ds: xr.Dataset, world: Any) -> tuple[xr.Dataset, slice, slice]:
    """The store cut to the world's extent, and the world rows/columns it covers.

    The store grid snaps to whole coarse cells, so it can be a little larger
    than the world; the truth exists only inside the world.
    """
    t, (height, width) = world.grid.transform, world.grid.shape
    col0 = round((float(ds["x"][0]) - t.a / 2 - t.c) / t.a)
    row0 = round((float(ds["y"][0]) - t.e / 2 - t.f) / t.e)
    s_rows, w_rows = _overlap(ds.sizes["y"], row0, height)
    s_cols, w_cols = _overlap(ds.sizes["x"], col0, width)
    return ds.isel(y=s_rows, x=s_cols), w_rows, w_cols


def _ndvi(image: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    red, nir = image[bands.index("red")], image[bands.index("nir")]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (nir - red) / (nir + red)


def _truth(
    world: Any, day: dt.date, bands: tuple[str, ...], rows: slice, cols: slice
) -> np.ndarray:
    full = world.truth(day)
    return full[[BANDS.index(b) for b in bands]][:, rows, cols]


def score_days(ds: xr.Dataset, world: Any, days: list[dt.date]) -> dict[str, Any]:
    """Metrics of the fused bands against the truth on ``days`` (and their mean)."""
    from pipeline.metrics import CONVENTION, score

    bands = tuple(ds.attrs["stf_bands"])
    ds, rows, cols = crop_to_world(ds, world)
    out: dict[str, Any] = {"convention": CONVENTION, "days": {}}
    for day in days:
        fused = np.stack([ds[b].sel(time=str(day)).values for b in bands])
        scores = score(_truth(world, day, bands, rows, cols), fused, bands, ratio=1 / 16)
        out["days"][day.isoformat()] = {"overall": scores.overall, "per_band": scores.per_band}
    keys = next(iter(out["days"].values()))["overall"].keys()
    out["mean"] = {k: float(np.mean([d["overall"][k] for d in out["days"].values()])) for k in keys}
    return out


def _maps(ds: xr.Dataset, world: Any, days: list[dt.date], path: Path) -> None:
    import matplotlib.pyplot as plt

    bands = tuple(ds.attrs["stf_bands"])
    ds, rows, cols = crop_to_world(ds, world)
    fig, axes = plt.subplots(len(days), 3, figsize=(12, 4 * len(days)), squeeze=False)
    for row, day in zip(axes, days, strict=True):
        truth = _ndvi(_truth(world, day, bands, rows, cols), bands)
        fused = ds["ndvi"].sel(time=str(day)).values
        for ax, img, title, cmap, lim in (
            (row[0], truth, f"truth NDVI {day}", "YlGn", (0, 1)),
            (row[1], fused, f"fused NDVI {day}", "YlGn", (0, 1)),
            (row[2], fused - truth, "fused - truth", "RdBu", (-0.2, 0.2)),
        ):
            im = ax.imshow(img, cmap=cmap, vmin=lim[0], vmax=lim[1])
            ax.set_title(title)
            ax.axis("off")
            fig.colorbar(im, ax=ax, shrink=0.7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _field_pixels(ds: xr.Dataset, world: Any, n: int) -> list[tuple[str, int, int]]:
    """(label, row, col) inside the ``n`` largest fields of distinct classes, crops first."""
    fields = world.fields.assign(area=world.fields.geometry.area).sort_values(
        "area", ascending=False
    )
    static = fields["class_name"].isin(["water", "urban", "forest", "bare"])  # flat NDVI
    fields = fields[~static] if (~static).sum() >= n else fields
    picked = fields.drop_duplicates("class_name").head(n)
    out = []
    for _, f in picked.iterrows():
        c = f.geometry.representative_point()
        col = int(np.argmin(np.abs(ds["x"].values - c.x)))
        row = int(np.argmin(np.abs(ds["y"].values - c.y)))
        out.append((f"{f['class_name']} (field {f['field_id']})", row, col))
    return out


def _timeseries(ds: xr.Dataset, world: Any, path: Path, n_fields: int = 3) -> None:
    import matplotlib.pyplot as plt

    bands = tuple(ds.attrs["stf_bands"])
    ds, rows, cols = crop_to_world(ds, world)
    days = [pd.Timestamp(t).date() for t in ds["time"].values]
    pixels = _field_pixels(ds, world, n_fields)
    truths = [_ndvi(_truth(world, d, bands, rows, cols), bands) for d in days]
    fig, ax = plt.subplots(figsize=(10, 5))
    for k, (label, r, c) in enumerate(pixels):
        color = f"C{k}"
        fused = ds["ndvi"].isel(y=r, x=c).values
        observed = (ds["quality"].isel(y=r, x=c).values & 1).astype(bool)
        ax.plot(days, [t[r, c] for t in truths], color=color, lw=1, ls="--", label=f"{label} truth")
        ax.plot(days, fused, color=color, lw=2, label=f"{label} fused")
        ax.scatter(np.array(days)[observed], fused[observed], color=color, marker="o", zorder=3)
    ax.set_ylabel("NDVI")
    ax.set_title("NDVI: fused (solid), truth (dashed), clear Landsat observations (dots)")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(
    url: str, world: Any, out_dir: Path, n_days: int = 4, n_calibration_days: int = 12
) -> dict[str, Any]:
    """Metrics JSON, NDVI maps and NDVI time series of a demo store against the world's truth.

    Parameters
    ----------
    url : the fused store.
    world : the :class:`pipeline.synth.World` the store was fused from.
    out_dir : where ``metrics.json``, ``maps.png``, ``ndvi_timeseries.png`` go.
    n_days : days without a Landsat scene that are scored.
    n_calibration_days : days without a Landsat scene the calibration is measured on.
    """
    from pipeline.store.write import open_store

    ds = open_store(url)
    out_dir.mkdir(parents=True, exist_ok=True)
    landsat = set(world.landsat_dates())
    candidates = [
        d for d in (pd.Timestamp(t).date() for t in ds["time"].values) if d not in landsat
    ]
    picks = [candidates[i] for i in _spread(len(candidates), n_days)]
    metrics = score_days(ds, world, picks)
    metrics["seamless"] = seamless_stats(ds)
    withheld = [candidates[i] for i in _spread(len(candidates), n_calibration_days)]
    metrics["calibration"], curves = calibration_on(ds, world, withheld)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    _maps(ds, world, picks[1:3], out_dir / "maps.png")
    _flags_figure(ds, picks[1:3], out_dir / "flags.png")
    _timeseries(ds, world, out_dir / "ndvi_timeseries.png")
    if curves:
        from pipeline.evaluate.calibration import plot_reliability

        title = "demo: stored sigma on days without Landsat"
        plot_reliability(curves, out_dir / "reliability.png", title)
    return metrics


def _spread(n: int, k: int) -> list[int]:
    """Up to ``k`` distinct indices spread evenly over ``range(n)``."""
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, k)).round()}) if n else []


def _flag_class(quality: np.ndarray) -> np.ndarray:
    """0 outside, 1 observed, 2 fused, 3 filled, 4 gap, 5 not written: one class per pixel-day."""
    from pipeline.store.layout import FILLED, FUSED, GAP, OBSERVED, OUTSIDE

    out = np.full(quality.shape, 5, np.uint8)
    for value, flag in ((4, GAP), (3, FILLED), (2, FUSED), (1, OBSERVED), (0, OUTSIDE)):
        out[(quality & flag) > 0] = value
    return out


_FLAG_NAMES = ("outside", "observed", "fused", "filled", "gap", "not written")


def seamless_stats(ds: xr.Dataset) -> dict[str, Any]:
    """Shares of in-coverage pixel-days with a finite value / uncertainty, and of each flag.

    Pixel-days flagged outside coverage (bit 16) are counted apart and excluded.
    """
    bands = tuple(ds.attrs["stf_bands"])
    classes = _flag_class(ds["quality"].values)
    inside = classes != 0
    finite = np.all([np.isfinite(ds[b].values) for b in bands], axis=0)
    sigma = np.isfinite(ds["uncertainty"].values)
    n = int(inside.sum())
    daily = (finite & inside).sum(axis=(1, 2)) / np.maximum(inside.sum(axis=(1, 2)), 1)
    return {
        "in_coverage_pixel_days": n,
        "outside_pixel_days": int((~inside).sum()),
        "finite_value": float((finite & inside).sum() / max(n, 1)),
        "finite_uncertainty": float((sigma & inside).sum() / max(n, 1)),
        "min_daily_finite": float(daily.min()) if daily.size else float("nan"),
        "flags": {
            name: float((classes == k).sum() / max(n, 1)) for k, name in enumerate(_FLAG_NAMES) if k
        },
    }


def calibration_on(
    ds: xr.Dataset, world: Any, days: list[dt.date]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Calibration of the stored sigma on withheld clear fine days.

    ``days`` have no Landsat scene, so the run never saw them; each gets a clear
    fine observation drawn from the world's own Landsat sensor model (truth plus
    OLI-like noise, :func:`pipeline.demo.withheld_landsat`, seeded per day), which is
    what a withheld clear Landsat scene is. The fractions against
    the noise-free truth are reported too (``vs_truth``).

    Returns the ``"calibration"`` JSON (overall, per flag, vs truth) and the
    reliability curves (:class:`~pipeline.evaluate.calibration.Calibration`) per flag.
    """
    from pipeline.demo import withheld_landsat
    from pipeline.evaluate.calibration import calibrate, within_sigma

    bands = tuple(ds.attrs["stf_bands"])
    factors = band_factors(ds, len(bands))
    ds, rows, cols = crop_to_world(ds, world)
    parts: dict[str, dict[str, list[np.ndarray]]] = {
        k: {"obs": [], "truth": [], "sigma": [], "pooled": []} for k in ("fused", "filled")
    }
    for day in days:
        one = ds.sel(time=str(day))
        truth = _truth(world, day, bands, rows, cols)
        observed = withheld_landsat(truth, day)
        fused = np.stack([one[b].values for b in bands])
        classes = _flag_class(one["quality"].values)
        for name, k in (("fused", 2), ("filled", 3)):
            mask = classes == k
            parts[name]["obs"].append((fused - observed)[:, mask].ravel())
            parts[name]["truth"].append((fused - truth)[:, mask].ravel())
            pooled = np.broadcast_to(one["uncertainty"].values[mask], (len(bands), int(mask.sum())))
            parts[name]["pooled"].append(pooled.ravel())
            parts[name]["sigma"].append((pooled * factors[:, None]).ravel())
    got = {k: {n: np.concatenate(v) for n, v in p.items()} for k, p in parts.items()}
    every = {
        n: np.concatenate([got[k][n] for k in got]) for n in ("obs", "truth", "sigma", "pooled")
    }
    out: dict[str, Any] = within_sigma(every["obs"], every["sigma"])
    out["days"] = [d.isoformat() for d in days]
    out["by_flag"] = {k: within_sigma(g["obs"], g["sigma"]) for k, g in got.items()}
    out["vs_truth"] = within_sigma(every["truth"], every["sigma"])
    out["pooled_sigma"] = within_sigma(every["obs"], every["pooled"])
    out["band_factors"] = dict(zip(bands, factors.tolist(), strict=True))
    out["convention"] = (
        "per band-pixel-day |value - withheld clear fine observation| vs the band's 1-sigma "
        "(the stored uncertainty, RMS over bands, times the band's factor from the run's "
        "calibration, provenance model.seamless.band_factors; pooled_sigma: the stored "
        "uncertainty for every band), fused and filled pixel-days inside the coverage, on days "
        "without a Landsat scene; the observation is the truth with the world's Landsat noise"
    )
    curves = {
        k: calibrate(g["obs"][None, None], g["sigma"][None, None], np.zeros((1, 1, g["obs"].size)))
        for k, g in got.items()
        if np.isfinite(g["sigma"]).any()
    }
    # does the sigma rank the errors (larger sigma, larger error)? per flag, over band-pixel-days
    out["spearman"] = {k: c.spearman for k, c in curves.items()}
    return out, curves


def band_factors(ds: xr.Dataset, n_bands: int) -> np.ndarray:
    """(band,) factors turning the stored uncertainty into each band's 1-sigma (ones if none).

    Recorded by the run's calibration under ``model.seamless.band_factors`` in the
    ``stf_provenance`` attr (:mod:`pipeline.fuse.calibrate`), read by
    :func:`pipeline.products.source.band_factors`.
    """
    from pipeline.products.source import band_factors as recorded

    factors = recorded(ds)
    return np.asarray(list(factors.values())) if len(factors) == n_bands else np.ones(n_bands)


def _flags_figure(ds: xr.Dataset, days: list[dt.date], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colors = ["0.3", "tab:blue", "tab:green", "tab:orange", "tab:red", "white"]
    classes = _flag_class(ds["quality"].values)
    times = [pd.Timestamp(t).date() for t in ds["time"].values]
    fig, axes = plt.subplots(1, len(days) + 1, figsize=(5 * (len(days) + 1), 4.5))
    for ax, day in zip(axes, days, strict=False):
        ax.imshow(classes[times.index(day)], cmap=ListedColormap(colors), vmin=-0.5, vmax=5.5,
                  interpolation="nearest")  # fmt: skip
        ax.set_title(f"quality {day}")
        ax.axis("off")
    inside = np.maximum((classes != 0).sum(axis=(1, 2)), 1)
    for k, name in enumerate(_FLAG_NAMES[1:5], start=1):
        axes[-1].plot(times, (classes == k).sum(axis=(1, 2)) / inside, color=colors[k], label=name)
    axes[-1].set(ylabel="share of in-coverage pixels", ylim=(0, 1), title="flags per day")
    axes[-1].legend(fontsize=7, title="grey = outside coverage", title_fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
