"""``stf ndvi|phenology|cropmap|feeds``: exit codes on good and bad inputs."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest

from pipeline.cli import main
from tests.products.storegen import write_fields, write_store


def test_missing_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ndvi", str(tmp_path / "nope.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stf: error: fused store not found") and "\n" not in err


def test_store_lacking_variables_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = write_store(tmp_path / "f.zarr", ny=6, nx=6, n_days=20, drop=("nir",))
    assert main(["phenology", str(store)]) == 2
    assert "lacks variable(s) nir" in capsys.readouterr().err


def test_labels_outside_the_store_exit_2(
    fused_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # labels in another CRS are reprojected (tests/products/test_labels.py); labels that
    # land elsewhere after reprojection are still refused with a one-line cause
    labels = write_fields(tmp_path / "far.parquet", epsg=4326)
    far = gpd.read_parquet(labels)
    far.geometry = far.geometry.translate(xoff=40.0)  # 40 degrees east of the store
    far.to_parquet(labels)
    code = main(["cropmap", str(fused_store), "--labels", str(labels), "--out", str(tmp_path)])
    assert code == 2
    assert "do not overlap the store grid" in capsys.readouterr().err


def test_unknown_classifier_exits_2(fused_store: Path, fields_parquet: Path) -> None:
    assert (
        main(["cropmap", str(fused_store), "--labels", str(fields_parquet), "--classifier", "svm"])
        == 2
    )


def test_ndvi_then_refuse_overwrite(fused_store: Path, tmp_path: Path) -> None:
    args = ["ndvi", str(fused_store), "--out", str(tmp_path), "--run-id", "a", "--smooth", "savgol"]
    assert main(args) == 0
    assert (tmp_path / "products" / "a" / "indices.zarr").exists()
    assert main(args) == 4
    assert main([*args, "--overwrite"]) == 0


def test_cropmap_and_feeds_succeed(fused_store: Path, fields_parquet: Path, tmp_path: Path) -> None:
    base = [str(fused_store), "--labels", str(fields_parquet), "--out", str(tmp_path)]
    assert main(["cropmap", *base, "--classifier", "rf", "--run-id", "c"]) == 0
    assert (tmp_path / "products" / "c" / "crop_map.tif").exists()
    assert main(["feeds", *base, "--run-id", "f"]) == 0
    assert (tmp_path / "products" / "f" / "field_features.parquet").exists()
