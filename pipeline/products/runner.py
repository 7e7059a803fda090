"""Product steps over one fused store, each writing into a versioned run directory.

``run_products`` is the function API ``pipeline.run`` calls after fusion; the ``stf``
commands call the single steps. Every step adds its files to ``outputs`` and a STAC
item to ``items``; :func:`finish` writes the collection and the manifest.

The store is read only through :mod:`pipeline.store` (a path or an fsspec URL).
Products of a store on an object store are written beside it, under
``<store prefix>/products/<run_id>/`` (staged locally, then uploaded:
:mod:`pipeline.products.publish`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
import xarray as xr

from pipeline.products import feeds, stac
from pipeline.products.cropmap import (
    NODATA,
    Classifier,
    class_colours,
    class_tags,
    predict_map,
    sample_pixels,
    train_and_assess,
)
from pipeline.products.features import feature_stack, layout_of, smoothed_series
from pipeline.products.indices import indices, weights_of, with_attrs
from pipeline.products.labels import LabelGrid, load_labels
from pipeline.products.phenology import phenology
from pipeline.products.publish import remote_run_dir, upload
from pipeline.products.smoothing import DEFAULT_LAMBDA, Method, smooth
from pipeline.products.source import open_fused, working_chunks
from pipeline.products.versioning import new_run_id, run_dir, write_manifest
from pipeline.store.lock import is_local, local_path
from pipeline.store.read import store_parent


@dataclass
class ProductRun:
    """State shared by the steps of one products run (store opened once, results reused).

    ``store`` is the store's path or URL; ``dir`` the local run folder the steps write
    into; ``target``, for an object-store destination, the URL it is uploaded to.
    """

    store: str
    ds: xr.Dataset
    dir: Path
    method: Method = "whittaker"
    lam: float = DEFAULT_LAMBDA
    outputs: dict[str, Path] = field(default_factory=dict)
    items: list[pystac.Item] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    ndvi_smooth: xr.DataArray | None = None
    features: xr.DataArray | None = None
    target: str | None = None

    @property
    def crs(self) -> Any:
        return self.ds.rio.crs

    @property
    def period(self) -> tuple[dt.datetime, dt.datetime]:
        t = pd.to_datetime(self.ds["time"].values[[0, -1]])
        return t[0].to_pydatetime().replace(tzinfo=dt.UTC), t[1].to_pydatetime().replace(
            tzinfo=dt.UTC
        )

    @property
    def store_ref(self) -> str:
        """The store as the items name it: a local store relative to the run folder (the
        run and its store move together), a remote one by its URL."""
        if is_local(self.store):
            return os.path.relpath(local_path(self.store).resolve(), self.dir.resolve())
        return self.store

    def grid(self) -> xr.DataArray:
        """A (y, x) template of the store grid (coords + CRS)."""
        return self.ds["red"].isel(time=0, drop=True)

    def item(self, item_id: str, assets: dict[str, Path], bands: list[dict] | None = None) -> None:
        g = self.grid()
        self.items.append(
            stac.make_item(
                item_id,
                assets,
                self.crs,
                g.rio.bounds(),
                self.period,
                shape=(g.sizes["y"], g.sizes["x"]),
                transform=g.rio.transform(),
                bands=bands,
                properties={
                    "stf:source_store": self.store_ref,
                    "stf:run": self.dir.name,
                },
            )
        )


def start(
    store: str | Path,
    out_root: str | Path | None = None,
    run_id: str | None = None,
    overwrite: bool = False,
    method: Method = "whittaker",
    lam: float = DEFAULT_LAMBDA,
) -> ProductRun:
    """Open ``store``, create ``<out_root>/products/<run_id>`` (default root: the store folder).

    ``store`` and ``out_root`` may be paths or fsspec URLs; an object-store root is
    written through a local staging folder uploaded by :func:`finish`.
    """
    url = str(store) if not is_local(str(store)) else str(Path(store).resolve())
    ds = open_fused(url)
    root = str(out_root) if out_root is not None else store_parent(url)
    target = None
    if is_local(root):
        folder = run_dir(root, run_id, overwrite)
    else:
        target, folder = remote_run_dir(root, run_id or new_run_id(), overwrite)
    run = ProductRun(url, ds, folder, method, lam, target=target)
    run.params.update(smoother=method, lam=lam)
    return run


def step_ndvi(run: ProductRun) -> None:
    """Daily NDVI/EVI/NDWI, weights and smoothed NDVI -> ``indices.zarr``."""
    ds = working_chunks(run.ds)
    out = indices(ds)
    out["weight"] = weights_of(ds)
    smoothed = smooth(out["ndvi"], out["weight"], run.method, run.lam)
    out["ndvi_smooth"] = with_attrs(smoothed, "ndvi_smooth").assign_attrs(
        smoother=run.method, smoother_lambda=run.lam
    )
    path = feeds.write_zarr(out, run.dir / "indices.zarr", run.crs)
    run.ndvi_smooth = xr.open_zarr(path)["ndvi_smooth"]  # reuse the written result, not the graph
    run.outputs["indices"] = path
    run.item("indices", {"zarr": path})


def step_phenology(run: ProductRun) -> None:
    """Phenology metrics -> ``phenology.zarr`` + one COG per metric."""
    if run.ndvi_smooth is None:
        step_ndvi(run)
    pheno = phenology(run.ndvi_smooth).compute()
    zarr_path = feeds.write_zarr(pheno, run.dir / "phenology.zarr", run.crs)
    assets = {"zarr": zarr_path}
    for name, da in pheno.data_vars.items():
        assets[name] = feeds.write_cog(da, run.dir / f"phenology_{name}.tif", run.crs)
    run.outputs.update(
        {"phenology": zarr_path, **{f"phenology_{k}": v for k, v in assets.items() if k != "zarr"}}
    )
    run.params["phenology"] = dict(pheno.attrs)
    band = [{"nodata": float("nan"), "data_type": "float32"}]
    run.item("phenology", assets, bands=band)


def features_of(run: ProductRun, period_days: int = 10) -> xr.DataArray:
    """The feature stack of the store (computed once, kept in memory, chunked for prediction)."""
    if run.features is None:
        feats = feature_stack(smoothed_series(run.ds, run.method, run.lam), period_days).compute()
        run.features = feats.chunk({"feature": -1, "y": 128, "x": 128})
        run.params["period_days"] = period_days
    return run.features


def step_cropmap(
    run: ProductRun,
    labels_path: Path,
    classifier: Classifier = "hgb",
    seed: int = 0,
    pixels_per_field: int = 50,
) -> LabelGrid:
    """Train on the labels (field split), write accuracy, crop map and probabilities.

    ``pixels_per_field`` bounds the training pixels drawn per field: the classifier's fit
    time grows with them (HGB on the demo's 1 262 fields: 200 per field took minutes).
    """
    feats = features_of(run)
    labels = load_labels(labels_path, run.grid())
    samples = sample_pixels(feats, labels, max_per_group=pixels_per_field, seed=seed)
    model, report = train_and_assess(
        samples, classifier, layout_of(feats), labels.class_names, seed
    )
    run.outputs.update({f"accuracy_{k}": v for k, v in report.save(run.dir).items()})
    result = predict_map(model, feats, labels.class_names).compute()
    names = {int(c): labels.class_names[int(c)] for c in result["class"].values}
    crop = feeds.write_cog(
        result["crop"],
        run.dir / "crop_map.tif",
        run.crs,
        nodata=NODATA,
        descriptions=["crop class"],
        colormap=class_colours(list(names)),
        tags=class_tags(names),
    )
    proba = feeds.write_cog(
        result["probability"],
        run.dir / "crop_probability.tif",
        run.crs,
        descriptions=[f"probability of {n}" for n in names.values()],
        tags=class_tags(names),
    )
    run.outputs.update(crop_map=crop, crop_probability=proba)
    run.outputs["cropmap"] = feeds.write_zarr(result, run.dir / "cropmap.zarr", run.crs)
    run.params.update(
        classifier=classifier, labels=str(labels_path), class_names=labels.class_names
    )
    run.params["accuracy"] = {"overall_accuracy": report.overall_accuracy, "kappa": report.kappa}
    run.item("crop_map", {"crop_map": crop}, bands=[{"nodata": NODATA, "data_type": "uint8"}])
    stac.add_classes(run.items[-1].assets["crop_map"], names, class_colours(list(names)))
    n_cls = result.sizes["class"]
    run.item(
        "crop_probability",
        {"probability": proba},
        bands=[{"nodata": float("nan"), "data_type": "float32"}] * n_cls,
    )
    return labels


def step_feeds(run: ProductRun, labels_path: Path, seed: int = 0) -> None:
    """Per-pixel samples and per-field zonal statistics as GeoParquet."""
    feats = features_of(run)
    labels = load_labels(labels_path, run.grid())
    samples = sample_pixels(feats, labels, seed=seed)
    pix = feeds.write_geoparquet(
        feeds.pixel_table(feats, samples, labels.class_names, run.crs),
        run.dir / "pixel_samples.parquet",
    )
    run.outputs["pixel_samples"] = pix
    run.item("pixel_samples", {"table": pix})
    if labels.fields is not None:
        table = feeds.field_table(
            np.asarray(feats.values), list(map(str, feats["feature"].values)), labels, run.crs
        )
        fld = feeds.write_geoparquet(table, run.dir / "field_features.parquet")
        run.outputs["field_features"] = fld
        run.item("field_features", {"table": fld})


def finish(run: ProductRun) -> dict[str, Any]:
    """Write the STAC collection and the manifest (then upload to ``run.target`` if set).

    Returns every output: a local ``Path``, or for an object-store run the
    :class:`~pipeline.products.publish.ObjectPath` URL of the uploaded file.
    """
    if run.items:
        run.items.append(stac.store_item(run.store, run.ds, run.period))
        name = run.store.rstrip("/").rsplit("/", 1)[-1]
        run.outputs["stac"] = stac.write_collection(
            run.dir, f"stf-products-{run.dir.name}", f"Products of {name}", run.items
        )
    run.outputs["manifest"] = write_manifest(run.dir, run.store, run.params, run.outputs)
    if run.target is not None:
        return upload(run.dir, run.target, run.outputs)
    return dict(run.outputs)


def run_products(
    store_path: str | Path,
    products_spec: Any,
    out_dir: str | Path,
    run_id: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the products a :class:`pipeline.config.ProductsSpec` asks for, as steps of ``stf run``.

    Products of a local store go to ``<out_dir>/products/<run_id>``; those of a store
    on an object store go beside it, ``<store prefix>/products/<run_id>`` (``out_dir``,
    the run's local ``output_root``, is then not used).

    Returns a dict of output name -> path (or :class:`~pipeline.products.publish.ObjectPath`).
    """
    spec = products_spec
    remote = not is_local(str(store_path))
    run = start(store_path, None if remote else out_dir, run_id, overwrite)
    if spec.ndvi or spec.phenology:
        step_ndvi(run)
    if spec.phenology:
        step_phenology(run)
    if (spec.cropmap or spec.feeds) and spec.labels is None:
        from pipeline.errors import InputError

        raise InputError(
            "products.cropmap/feeds need products.labels (field polygons or a class raster)"
        )
    if spec.cropmap:
        step_cropmap(run, spec.labels, pixels_per_field=spec.pixels_per_field)
    if spec.feeds:
        step_feeds(run, spec.labels)
    return finish(run)
