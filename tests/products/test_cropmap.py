"""Field-separated split, classifiers on a separable case, whole-region prediction, accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.products.accuracy import assess
from pipeline.products.cropmap import NODATA, Samples, make_classifier, predict_map, split_by_field
from pipeline.products.labels import block_groups


def _separable(n_fields: int = 30, per_field: int = 20, seed: int = 0) -> Samples:
    """Rows of 2 channels x 6 steps + 1 static; class k peaks at step 2k."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_fields), per_field)
    y = groups % 3
    seq = np.zeros((groups.size, 2, 6), np.float32)
    seq[np.arange(groups.size), 0, 2 * y] = 1.0
    seq += rng.normal(0, 0.1, seq.shape).astype(np.float32)
    x = np.concatenate([seq.reshape(groups.size, -1), rng.normal(0, 1, (groups.size, 1))], axis=1)
    return Samples(x.astype(np.float32), y, groups, groups, groups)


def test_split_by_field_never_shares_a_field() -> None:
    groups = np.repeat(np.arange(40), 7)
    train, test = split_by_field(groups, test_size=0.3, seed=1)
    assert set(groups[train]).isdisjoint(groups[test])
    assert train.size + test.size == groups.size and test.size > 0


def test_block_groups_are_squares() -> None:
    g = block_groups((4, 6), 2)
    assert g[0, 0] == g[1, 1] != g[0, 2] and g.max() == 5


@pytest.mark.parametrize("name", ["hgb", "rf", "tcn"])
def test_classifier_separates_toy_classes(name: str) -> None:
    s = _separable()
    train, test = split_by_field(s.groups, seed=0)
    model = make_classifier(name, (2, 6, 1), seed=0).fit(s.x[train], s.y[train])
    pred = np.asarray(model.classes_)[model.predict_proba(s.x[test]).argmax(1)]
    report = assess(s.y[test], pred, {0: "a", 1: "b", 2: "c"})
    assert report.kappa > 0.9, report.to_markdown()


def test_predict_map_on_dask_marks_nodata(tmp_path: Path) -> None:
    s = _separable()
    model = make_classifier("hgb", (2, 6, 1)).fit(s.x, s.y)
    feats = s.x[:48].T.reshape(13, 6, 8).copy()
    feats[:, 0, 0] = np.nan
    da = xr.DataArray(feats, dims=("feature", "y", "x")).chunk({"y": 3, "x": 4})
    out = predict_map(model, da, {0: "a", 1: "b", 2: "c"})
    crop = out["crop"].values
    assert crop.dtype == np.uint8 and crop[0, 0] == NODATA
    np.testing.assert_array_equal(crop.ravel()[1:], s.y[1:48])
    np.testing.assert_allclose(out["probability"].sum("class").values.ravel()[1:], 1, atol=1e-5)
    paths = assess(s.y[1:48], crop.ravel()[1:], {0: "a", 1: "b", 2: "c"}).save(tmp_path)
    assert paths["png"].stat().st_size > 0 and "kappa" in paths["md"].read_text()


def test_a_series_shorter_than_one_period_is_refused_in_one_line(tmp_path: Path) -> None:
    """Three days: no composite period, all-NaN phenology; a one-line InputError (exit 2)."""
    from pipeline.errors import InputError
    from pipeline.products.features import feature_stack, smoothed_series
    from pipeline.products.source import open_fused
    from tests.products.storegen import write_store

    ds = open_fused(write_store(tmp_path / "short.zarr", n_days=3))
    with pytest.raises(InputError, match="fewer than one 10-day composite period"):
        feature_stack(smoothed_series(ds))


def test_training_pixels_per_field_are_bounded_by_the_config() -> None:
    from pydantic import ValidationError

    from pipeline.config import ProductsSpec
    from pipeline.products.cropmap import sample_pixels
    from pipeline.products.labels import LabelGrid

    assert ProductsSpec().pixels_per_field == 50
    with pytest.raises(ValidationError, match="pixels_per_field"):
        ProductsSpec(pixels_per_field=0)
    groups = np.repeat(np.arange(4), 16).reshape(8, 8).astype(np.int32)  # 4 fields of 16 px
    labels = LabelGrid((groups % 2).astype(np.int16), groups, {0: "a", 1: "b"})
    feats = xr.DataArray(np.ones((3, 8, 8), np.float32), dims=("feature", "y", "x"))
    picked = sample_pixels(feats, labels, max_per_group=5)
    assert np.bincount(picked.groups).tolist() == [5, 5, 5, 5]
