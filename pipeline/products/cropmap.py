"""Crop-type mapping: sample labelled pixels, split by field, train, predict the region on Dask.

Classifiers: ``hgb`` (HistGradientBoosting), ``rf`` (RandomForest) and ``tcn`` (the
1-D temporal CNN of :mod:`pipeline.products.temporal_net`), all trained on the same
feature rows. The train/test split is by *group* (field, or spatial block for raster
labels), never by pixel: neighbouring pixels of one field are near-duplicates and a
pixel split would overstate accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask.array as darr
import numpy as np
import xarray as xr
from sklearn.model_selection import GroupShuffleSplit

from pipeline.errors import InputError
from pipeline.products.accuracy import AccuracyReport, assess
from pipeline.products.labels import LabelGrid

Classifier = Literal["hgb", "rf", "tcn"]
CLASSIFIERS: tuple[str, ...] = ("hgb", "rf", "tcn")

#: Crop-map value of pixels that could not be classified (no features).
NODATA = 255


@dataclass(frozen=True)
class Samples:
    """Labelled feature rows.

    ``x`` (n, feature) float32; ``y`` (n,) class id; ``groups`` (n,) field id;
    ``rows``/``cols`` (n,) pixel indices on the grid.
    """

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def make_classifier(name: Classifier, layout: tuple[int, int, int], seed: int = 0) -> Any:
    """A fresh, unfitted classifier with ``fit``/``predict_proba``/``classes_``."""
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return _NanSafe(
            RandomForestClassifier(
                n_estimators=200, min_samples_leaf=2, n_jobs=2, random_state=seed
            )
        )
    if name == "tcn":
        from pipeline.products.temporal_net import TemporalNetClassifier

        return TemporalNetClassifier(layout, seed=seed)
    raise InputError(f"unknown classifier {name!r}; use one of {', '.join(CLASSIFIERS)}")


class _NanSafe:
    """Wrap an estimator that refuses NaN (RandomForest): NaN -> -1 (outside the feature ranges)."""

    def __init__(self, est: Any) -> None:
        self.est = est

    def fit(self, x: np.ndarray, y: np.ndarray) -> _NanSafe:
        self.est.fit(np.nan_to_num(x, nan=-1.0), y)
        self.classes_ = self.est.classes_
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.est.predict_proba(np.nan_to_num(x, nan=-1.0))


def sample_pixels(
    features: xr.DataArray, labels: LabelGrid, max_per_group: int = 200, seed: int = 0
) -> Samples:
    """Draw up to ``max_per_group`` labelled pixels per field and read their feature rows.

    Pixels whose temporal features are all NaN (no valid value all season) are dropped.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero((labels.classes >= 0) & (labels.groups >= 0))
    if rows.size == 0:
        raise InputError(
            "no labelled pixels on the store grid; check that the labels overlap the store"
        )
    order = rng.permutation(rows.size)
    rows, cols = rows[order], cols[order]
    keep = _rank_in_group(labels.groups[rows, cols]) < max_per_group
    rows, cols = rows[keep], cols[keep]
    pts = features.isel(y=xr.DataArray(rows, dims="s"), x=xr.DataArray(cols, dims="s"))
    x = np.asarray(pts.transpose("s", "feature").values, dtype=np.float32)
    ok = np.isfinite(x).any(axis=1)
    return Samples(
        x[ok],
        labels.classes[rows, cols][ok].astype(int),
        labels.groups[rows, cols][ok],
        rows[ok],
        cols[ok],
    )


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """Position of each element among the elements of its group, in array order."""
    order = np.argsort(groups, kind="stable")
    sorted_g = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_g)) + 1]
    rank_sorted = np.arange(groups.size) - np.repeat(starts, np.diff(np.r_[starts, groups.size]))
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def split_by_field(
    groups: np.ndarray, test_size: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Train / test row indices with every group (field) wholly on one side (GroupShuffleSplit)."""
    if np.unique(groups).size < 2:
        raise InputError(
            "labels hold a single field; a field-separated split needs at least two fields"
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(splitter.split(np.zeros(groups.size), groups=groups))
    return train, test


def train_and_assess(
    samples: Samples,
    classifier: Classifier,
    layout: tuple[int, int, int],
    class_names: dict[int, str],
    seed: int = 0,
) -> tuple[Any, AccuracyReport]:
    """Fit on the training fields and score on the held-out fields."""
    train, test = split_by_field(samples.groups, seed=seed)
    model = make_classifier(classifier, layout, seed).fit(samples.x[train], samples.y[train])
    proba = model.predict_proba(samples.x[test])
    pred = np.asarray(model.classes_)[proba.argmax(axis=1)]
    return model, assess(samples.y[test], pred, class_names)


def _predict_block(block: np.ndarray, model: Any) -> np.ndarray:
    """(feature, y, x) -> (class, y, x) float32 probabilities; NaN where a pixel has no data."""
    n_f, ny, nx = block.shape
    rows = block.reshape(n_f, -1).T
    ok = np.isfinite(rows).any(axis=1)
    out = np.full((rows.shape[0], len(model.classes_)), np.nan, np.float32)
    if ok.any():
        out[ok] = model.predict_proba(rows[ok])
    return out.T.reshape(-1, ny, nx)


def _crop_ids(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(class, y, x) probabilities -> (y, x) uint8 id of the most probable class, NODATA if none."""
    empty = np.isnan(proba[0])
    best = np.where(np.isnan(proba), -1, proba).argmax(axis=0)
    return np.where(empty, NODATA, classes[best]).astype(np.uint8)


def predict_map(model: Any, features: xr.DataArray, class_names: dict[int, str]) -> xr.Dataset:
    """Classify every pixel on Dask (one task per spatial chunk).

    Returns
    -------
    xarray.Dataset with ``crop`` (y, x) uint8 class id (:data:`NODATA` = 255 where no data)
    and ``probability`` (class, y, x) float32, lazy.
    """
    data = (
        features.data if isinstance(features.data, darr.Array) else darr.from_array(features.data)
    )
    data = data.rechunk({0: -1})
    classes = np.asarray(model.classes_)
    proba = darr.map_blocks(
        _predict_block,
        data,
        model=model,
        dtype=np.float32,
        chunks=((len(classes),), *data.chunks[1:]),
    )
    crop = darr.map_blocks(_crop_ids, proba, classes=classes, dtype=np.uint8, drop_axis=0)
    coords = {k: v for k, v in features.coords.items() if "feature" not in v.dims}
    out = xr.Dataset(
        {
            "crop": (("y", "x"), crop, {"nodata": NODATA}),
            "probability": (("class", "y", "x"), proba, {"units": "1"}),
        },
        coords={
            **coords,
            "class": classes.astype(int),
            "class_name": ("class", np.array([class_names[int(c)] for c in classes], dtype=object)),
        },
    )
    out.attrs["class_names"] = str({int(c): class_names[int(c)] for c in classes})
    return out


#: Qualitative colours of the crop classes (Okabe-Ito, distinguishable with colour-vision
#: deficiency, then ColorBrewer Set3), cycled when there are more classes.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (153, 153, 153),
    (141, 211, 199),
    (190, 186, 218),
    (251, 128, 114),
    (128, 177, 211),
)


def class_colours(class_ids: Sequence[int]) -> dict[int, tuple[int, int, int, int]]:
    """RGBA colour table of a crop map: one colour per class id, :data:`NODATA` transparent."""
    table = {int(c): (*PALETTE[i % len(PALETTE)], 255) for i, c in enumerate(sorted(class_ids))}
    table[NODATA] = (0, 0, 0, 0)
    return table


def class_tags(class_names: dict[int, str]) -> dict[str, str]:
    """GeoTIFF metadata naming the classes: ``CLASS_<id>=<name>`` and ``class_names`` (JSON)."""
    import json

    tags = {f"CLASS_{int(c)}": name for c, name in sorted(class_names.items())}
    tags["class_names"] = json.dumps({int(c): n for c, n in sorted(class_names.items())})
    return tags
