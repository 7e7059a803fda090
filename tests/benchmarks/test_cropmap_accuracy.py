"""The crop-map benchmark's bookkeeping: crop-only kappa, the regimes table, the error table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cropmap_accuracy import _crop_only_kappa, regimes_markdown
from benchmarks.cropmap_series_error import to_markdown


def _report(tmp_path: Path) -> Path:
    # urban is perfect; among the crops maize and soybean swap 2 of 10 pixels each
    rep = {
        "classes": ["urban", "maize", "soybean"],
        "confusion": [[50, 0, 0], [0, 8, 2], [0, 2, 8]],
    }
    path = tmp_path / "rep.json"
    path.write_text(json.dumps(rep))
    return path


def test_crop_only_kappa_drops_the_other_classes(tmp_path: Path) -> None:
    # crops only: po = 0.8, pe = 0.5 -> kappa 0.6 (urban's 50 easy pixels do not count)
    assert _crop_only_kappa(_report(tmp_path), labels=None) == pytest.approx(0.6)  # type: ignore[arg-type]


def test_regimes_markdown_names_command_load_and_every_row() -> None:
    row = {
        "data": "calibrated (cloudiness 0.4)", "series": "fused dense", "classifier": "hgb",
        "oa": 0.9, "kappa": 0.85, "crop_kappa": 0.8, "n_test": 100, "fuse_s": 12.0,
        "f1": {"maize": 0.9}, "regime": "calibrated",
        "flags": {"observed": 0.1, "fused": 0.8, "filled": 0.1, "gap": 0.0},
    }  # fmt: skip
    text = regimes_markdown([row], "python -m benchmarks.cropmap_accuracy --regimes W", "t", "1")
    assert "--regimes W" in text and "load average" in text
    assert "| calibrated (cloudiness 0.4) | fused dense | hgb | 0.900 | 0.850 | 0.800 |" in text
    assert "calibrated / fused dense / hgb: maize 0.900" in text
    assert "- calibrated: 0.100 / 0.800 / 0.100 / 0.000" in text


def test_series_error_table_marks_missing_values() -> None:
    rows = [
        {"month": "2024-05", "share_observed": 0.05, "rmse_fused": 0.04, "rmse_landsat": 0.06,
         "rmse_raw_fused": 0.05, "share_flat_fused": 0.5, "rmse_raw_fused_sharp": 0.02,
         "rmse_raw_filled": None},
    ]  # fmt: skip
    text = to_markdown({"cloudier": rows})
    assert "| cloudier | 2024-05 | 0.050 | 0.040 | 0.060 | 0.050 | 0.500 | 0.020 | - |" in text
