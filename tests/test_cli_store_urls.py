"""``stf ndvi|phenology|cropmap|feeds STORE`` hand URLs to the products runner unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.errors import InputError


@pytest.mark.parametrize(
    "argv",
    [
        ["ndvi"],
        ["phenology"],
        ["cropmap", "--labels", "fields.parquet"],
        ["feeds", "--labels", "fields.parquet"],
    ],
)
def test_store_urls_are_not_mangled(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def start(store: Any, out: Any, *_: Any) -> None:
        seen.update(store=store, out=out)
        raise InputError("stop here")  # the runner itself is tested in tests/products

    monkeypatch.setattr("pipeline.products.runner.start", start)
    url, out = "s3://bucket/prefix/fusion.zarr", "gs://other/products-root"
    assert main([argv[0], url, *argv[1:], "--out", out]) == 2
    assert seen == {"store": url, "out": out}  # a Path would give s3:/bucket/...
    assert "stop here" in capsys.readouterr().err


def test_local_store_path_still_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Any] = []

    def start(store: Any, out: Any, *_: Any) -> None:
        seen.append(store)
        raise InputError("stop here")

    monkeypatch.setattr("pipeline.products.runner.start", start)
    assert main(["ndvi", str(tmp_path / "fusion.zarr")]) == 2
    assert seen == [str(tmp_path / "fusion.zarr")]
