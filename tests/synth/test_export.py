"""The fine/coarse export and manifest used by the model evaluation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from scipy import ndimage

from pipeline.errors import InputError
from pipeline.synth import World, export_manifest
from pipeline.synth.modis_sim import shift_px


def test_export_writes_aligned_fine_and_coarse_pairs(tiny_world: World, tmp_path: Path) -> None:
    path = export_manifest(tiny_world, tmp_path, bands=("green", "red", "nir"))
    manifest = yaml.safe_load(path.read_text())
    assert manifest["name"] == "synthetic" and manifest["ratio"] == 16
    assert manifest["bands"] == ["green", "red", "nir"]
    assert manifest["fine"] == manifest["coarse"] == {"scale": 0.0001}
    dates = [entry["date"] for entry in manifest["dates"]]
    assert dates == tiny_world.landsat_dates()[:3] and manifest["predict"] == dates[1]
    entry = manifest["dates"][0]
    with (
        rasterio.open(tmp_path / entry["fine"]) as fine,
        rasterio.open(tmp_path / entry["coarse"]) as coarse,
    ):
        assert fine.count == coarse.count == 3 and fine.dtypes[0] == "int16"
        assert coarse.width * 16 == fine.width and coarse.height * 16 == fine.height
        assert coarse.transform.c == fine.transform.c and coarse.transform.f == fine.transform.f
        f, c = fine.read() * 1e-4, coarse.read() * 1e-4
    # The coarse files carry the world's MODIS model: misregistered by spec.modis_shift_m
    # (real estarfm-2001: ~540 m) with a gain below one, so they match the fine block means
    # only once the shift is undone (formerly exact block means, |diff| < 0.02).
    rows, cols = shift_px(tiny_world.spec.modis_shift_m)
    aligned = ndimage.shift(f, (0, rows, cols), order=0, mode="nearest")

    def nir_r(fine_img: np.ndarray) -> float:
        blocks = fine_img.reshape(3, c.shape[1], 16, c.shape[2], 16).mean(axis=(2, 4))
        return float(np.corrcoef(blocks[2].ravel(), c[2].ravel())[0, 1])

    assert nir_r(aligned) > 0.9 and nir_r(aligned) > nir_r(f)
    blocks = aligned.reshape(3, c.shape[1], 16, c.shape[2], 16).mean(axis=(2, 4))
    assert np.abs(blocks - c).mean() < 0.03
    truth = tiny_world.truth(dates[0])[[1, 2, 3]]
    assert np.abs(f - truth).mean() < 0.01


def test_export_refuses_too_few_dates(tiny_world: World, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 3 dates"):
        export_manifest(tiny_world, tmp_path, dates=[dt.date(2024, 6, 8)])
