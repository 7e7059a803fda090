"""Run configuration: valid YAML parses, every bad field gives one line naming it."""

from pathlib import Path

import pytest

from pipeline.config import RunConfig, load_config, parse_config
from pipeline.errors import ConfigError

BASE = {
    "region": {"name": "demo", "bbox": [10.0, 45.0, 10.2, 45.1]},
    "time": {"start": "2024-04-01", "end": "2024-09-30"},
}


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config(BASE)
    assert isinstance(cfg, RunConfig)
    assert cfg.grid.coarse_resolution == 480.0
    assert cfg.collections.fine == "landsat-c2-l2"
    assert len(cfg.time.days()) == 183


@pytest.mark.parametrize(
    ("patch", "field", "reason"),
    [
        ({"time": {"start": "2024-06-01", "end": "2024-01-01"}}, "time", "before start"),
        ({"region": {"bbox": [10.2, 45.0, 10.0, 45.1]}}, "region.bbox", "west < east"),
        ({"region": {"bbox": [200, 45.0, 201, 45.1]}}, "region.bbox", "longitudes"),
        ({"bands": ["red", "thermal"]}, "bands", "unknown band"),
        ({"grid": {"resolution": 45}}, "grid.resolution", "not a multiple"),
        ({"model": {"name": "nope"}}, "model.name", "unknown model"),
        ({"collections": {"fine": "sentinel-2-l2a"}}, "collections", "unknown fine collection"),
        ({"stac": {"url": "ftp://x"}}, "stac.url", "http"),
        ({"stac": {"fine": {"url": "s3://x"}}}, "stac.fine.url", "http"),
        ({"stac": {"coarse": {"signing": "planetary-computer"}}}, "stac.coarse.url", "missing"),
        ({"stac": {"coarse": {"url": "demo", "signing": "aws"}}}, "stac.coarse.signing", "'none'"),
        ({"stac": {"fine": {"url": "demo", "alternate": "s3 x"}}}, "stac.fine.alternate", "match"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"products": {"cropmap": True}}, "products", "need products.labels"),
        ({"compute": {"window_mib": 0}}, "compute.window_mib", "greater than 0"),
    ],
)
def test_bad_field_named_in_one_line(patch: dict, field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, **patch}, source="bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert f"bad.yaml: {field}" in message
    assert reason in message
    assert info.value.exit_code == 2


def test_yaml_file_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs resolve against the config's folder, output_root against the working directory."""
    folder, workdir = tmp_path / "configs", tmp_path / "work"
    folder.mkdir()
    workdir.mkdir()
    path = folder / "region.yaml"
    path.write_text(
        "region: {bbox: [10.0, 45.0, 10.2, 45.1]}\n"
        "time: {start: 2024-04-01, end: 2024-04-10}\n"
        "output_root: out\n"
        "model: {weights: w.safetensors}\n"
    )
    monkeypatch.chdir(workdir)
    cfg = load_config(path)
    assert cfg.output_root == workdir / "out"
    assert cfg.model.weights == folder / "w.safetensors"


def test_unparseable_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("region: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_each_collection_may_have_its_own_endpoint() -> None:
    pc = "https://planetarycomputer.microsoft.com/api/stac/v1"
    es = "https://earth-search.aws.element84.com/v1"
    cfg = parse_config(
        {
            **BASE,
            "stac": {
                "url": pc,
                "signing": "planetary-computer",
                "fine": {"url": es, "requester_pays": True, "alternate": "s3"},
            },
        }
    )
    fine, coarse = cfg.stac.endpoint("fine"), cfg.stac.endpoint("coarse")
    assert (fine.url, fine.signing, fine.requester_pays, fine.alternate) == (es, "none", True, "s3")
    assert (coarse.url, coarse.signing, coarse.requester_pays) == (pc, "planetary-computer", False)
    assert cfg.stac.signings == {"planetary-computer"} and cfg.stac.requester_pays_any
    one = cfg.stac.for_role("fine")  # what the search of one collection sees
    assert one.url == es and one.fine is None and one.coarse is None and one.alternate == "s3"
    plain = parse_config(BASE).stac
    assert plain.endpoint("fine") == plain.endpoint("coarse") and not plain.signings
