"""Manifest validation (table-driven), raster loading rules and ``stf evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.evaluate import evaluate, load_dataset, load_manifest

REAL = Path(__file__).resolve().parents[2] / "manifests" / "estarfm-2001.yaml"
HAVE_REAL = (Path(__file__).resolve().parents[1] / "data/real/estarfm-2001").is_dir()


def _tif(path: Path, data: np.ndarray) -> str:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        transform=rasterio.transform.from_origin(0, 30 * data.shape[1], 30, 30),
    ) as dst:
        dst.write(data)
    return path.name


def _world(tmp: Path, bands: int = 2, size: int = 32, coarse_size: int = 2) -> dict:
    rng = np.random.default_rng(0)
    dates = []
    for i, day in enumerate(("2020-06-01", "2020-06-17", "2020-07-03")):
        fine = (2000 + 1000 * rng.random((bands, size, size)) + 100 * i).astype(np.int16)
        coarse = (2000 + 100 * i + np.zeros((bands, coarse_size, coarse_size))).astype(np.int16)
        dates.append(
            {
                "date": day,
                "fine": _tif(tmp / f"f{i}.tif", fine),
                "coarse": _tif(tmp / f"c{i}.tif", coarse),
            }
        )
    _tif(tmp / "mask.tif", np.zeros((1, size, size), np.uint8))
    return {
        "name": "toy",
        "bands": [f"b{i}" for i in range(bands)],
        "fine": {"scale": 0.0001},
        "coarse": {"scale": 0.0001},
        "ratio": size // coarse_size,
        "dates": dates,
        "predict": "2020-06-17",
    }


def _write(tmp: Path, manifest: dict) -> Path:
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def _drop_coarse(m: dict) -> None:
    del m["dates"][1]["coarse"]


def _bad_bands(m: dict) -> None:
    m["bands"] = ["b0", "b1", "b2"]


def _missing_file(m: dict) -> None:
    m["dates"][2]["fine"] = "nope.tif"


def _bad_ratio(m: dict) -> None:
    m["ratio"] = 5


def _bad_date(m: dict) -> None:
    m["predict"] = "2020-13-40"


def _not_a_date(m: dict) -> None:
    m["predict"] = "2021-01-01"


def _mask_without_values(m: dict) -> None:
    m["dates"][0]["mask"] = "mask.tif"


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_drop_coarse, "dates[1].coarse"),
        (_bad_bands, "dates[0].fine"),
        (_missing_file, "dates[2].fine"),
        (_bad_ratio, "dates[0].coarse"),
        (_bad_date, "predict"),
        (_not_a_date, "predict"),
        (_mask_without_values, "dates[0].invalid"),
    ],
)
def test_bad_manifest_names_the_field(tmp_path: Path, edit, field: str, capsys) -> None:
    manifest = _world(tmp_path)
    edit(manifest)
    path = _write(tmp_path, manifest)
    code = main(["evaluate", str(path), "--model", "naive_change", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("model", "pairs", "message"),
    [("no_such_model", 3, "unknown model"), ("naive_change", 1, "reference pair")],
)
def test_model_errors(tmp_path: Path, model: str, pairs: int, message: str) -> None:
    manifest = _world(tmp_path)
    manifest["dates"] = manifest["dates"][:pairs] if pairs > 1 else manifest["dates"][1:2]
    with pytest.raises(InputError, match=message):
        evaluate(_write(tmp_path, manifest), model)


def test_coarse_upsampled_and_mask_applied(tmp_path: Path) -> None:
    manifest = _world(tmp_path, bands=1)
    manifest["bands"] = ["ndvi"]
    mask = np.zeros((1, 32, 32), np.uint8)
    mask[0, :4] = 3
    _tif(tmp_path / "mask.tif", mask)
    manifest["dates"][1].update({"mask": "mask.tif", "invalid": [3]})
    data = load_dataset(load_manifest(_write(tmp_path, manifest)))
    scene = data.scenes[1]
    assert scene.coarse.shape == (1, 32, 32)
    np.testing.assert_allclose(scene.coarse, 0.21, atol=1e-6)
    assert np.isnan(scene.fine[0, :4]).all() and not data.masks[scene.date][:4].any()
    result = evaluate(_write(tmp_path, manifest), "naive_change").result
    assert set(result["per_band"]) == {"ndvi"}


@pytest.mark.skipif(not HAVE_REAL, reason="tests/data/real is not available")
def test_evaluate_json_on_real_data(capsys) -> None:
    code = main(["evaluate", str(REAL), "--model", "naive_change", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)  # exactly one JSON object and nothing else
    assert out.strip().count("\n") == 0
    assert set(result) == {
        "model",
        "dataset",
        "target_date",
        "convention",
        "per_band",
        "overall",
        "seconds",
        "refs",
        "baselines",
        "best_baseline",
        "gain_over_best_baseline",
        "coregistration",
    }
    assert result["best_baseline"]["model"] in result["baselines"]
    assert "smoothed_change" in result["baselines"]
    # the real MODIS of this set is ~(-8, -16) fine px off the Landsat grid
    assert result["coregistration"]["applied"] == pytest.approx([-8, -16], abs=1.0)
    assert result["target_date"] == "2001-07-11" and set(result["per_band"]) == {
        "green",
        "red",
        "nir",
    }
    assert 0.005 < result["overall"]["rmse"] < 0.012


@pytest.mark.skipif(not HAVE_REAL, reason="tests/data/real is not available")
def test_table_and_png(tmp_path: Path, capsys) -> None:
    code = main(["evaluate", str(REAL), "--model", "naive_fine", "--out", str(tmp_path)])
    assert code == 0 and "overall" in capsys.readouterr().out
    assert (tmp_path / "estarfm-2001-naive_fine.png").stat().st_size > 1000


@pytest.mark.skipif(not HAVE_REAL, reason="tests/data/real is not available")
def test_coregistered_evaluation_scores_only_pixels_the_coarse_image_sees() -> None:
    """The shift moves no coarse data into the frame it opens: those pixels leave the masks."""
    from pipeline.evaluate.manifest import load_manifest
    from pipeline.evaluate.rasters import coregister_dataset, load_dataset

    dataset = load_dataset(load_manifest(REAL))
    shifted, record = coregister_dataset(dataset, "auto")
    dy, dx = record.applied  # about (-8, -16): the coarse image sees p + shift
    for date, mask in shifted.masks.items():
        before = dataset.masks[date]
        assert (
            not mask[: int(np.ceil(-dy)) - 1].any() and not mask[:, : int(np.ceil(-dx)) - 1].any()
        )
        assert np.array_equal(mask[20:, 20:], before[20:, 20:])
