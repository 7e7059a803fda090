"""The bad-input matrix: every case gives one line naming the cause, a documented exit code,
and leaves the existing outputs (a store, a model) byte-for-byte untouched.

Cases reach the pipeline the way a user does: ``stf`` argv through
:func:`pipeline.cli.main`, or, for STAC records, rasters and model files, the
library call that ``stf run`` makes (its error becomes the same line and code).
Where a per-module test already covers a case, ``ref`` names it; the matrix
still runs the case itself.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
import yaml

from pipeline.catalog.search import SearchResult, search_items
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.cube.cubes import load_cubes
from pipeline.errors import StfError
from pipeline.models.registry import create_model, load_model
from pipeline.security import redact_text
from pipeline.store.layout import Grid, StoreLayout
from pipeline.store.write import prepare_store
from pipeline.synth import World
from tests.evaluate import test_manifest as manifests
from tests.reliability.conftest import run_config

#: Exit codes the README documents for user-facing failures.
DOCUMENTED = {2, 3, 4}


@dataclass(frozen=True)
class Ctx:
    """What a case may use: a scratch dir, the existing outputs, the world and its search."""

    tmp: Path
    out: Path
    world: World
    stac_url: str
    search: SearchResult


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it fail, the exit code, a word of the message, the old test."""

    id: str
    kind: str
    action: Callable[[Ctx], tuple[int, str]]
    code: int
    needle: str
    ref: str = ""


def cli(argv: list[str]) -> tuple[int, str]:
    """``stf argv``: exit code and the last stderr line (the one-line error)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    lines = err.getvalue().strip().splitlines()
    assert len([x for x in lines if x.startswith(("stf: error", "Error"))]) <= 1, lines
    return code, lines[-1] if lines else ""


def lib(call: Callable[[], object]) -> tuple[int, str]:
    """A library call as the CLI reports it: an StfError becomes its code and one line."""
    try:
        call()
    except StfError as err:
        return err.exit_code, redact_text(err.message)
    return 0, ""


# --- config --------------------------------------------------------------------------


def _cfg(ctx: Ctx, text: str | None = None, **changes: Any) -> tuple[int, str]:
    path = ctx.tmp / "run.yaml"
    if text is None:
        text = yaml.safe_dump(run_config(ctx.world, "http://127.0.0.1:9", ctx.out, **changes))
    path.write_text(text)
    return cli(["run", str(path)])


def _without(key: str) -> Callable[[Ctx], tuple[int, str]]:
    def action(ctx: Ctx) -> tuple[int, str]:
        data = run_config(ctx.world, "http://127.0.0.1:9", ctx.out)
        del data[key]
        return _cfg(ctx, yaml.safe_dump(data))

    return action


def _time(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


# --- STAC records and rasters (what ``load_cubes`` meets in ``stf run``) ---------------


def _cubes(ctx: Ctx, edit: Callable[[Any, Ctx], None], every: bool = True) -> tuple[int, str]:
    result = copy.deepcopy(ctx.search)
    for item in result.fine if every else result.fine[:1]:
        edit(item, ctx)
    cfg = parse_config(run_config(ctx.world, ctx.stac_url, ctx.out))
    return lib(lambda: load_cubes(cfg, result))


def _red_like(ctx: Ctx, name: str, data: np.ndarray, crs: str = "EPSG:32632") -> str:
    """A COG-shaped GeoTIFF like the world's red band, with other values, dtype or CRS."""
    src_href = ctx.search.fine[0].assets["red"].href.removeprefix("file://")
    with rasterio.open(src_href) as src:
        profile = src.profile
    profile.update(dtype=data.dtype, crs=crs)
    path = ctx.tmp / name
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return f"file://{path}"


def _set_red(href: Callable[[Ctx], str]) -> Callable[[Any, Ctx], None]:
    def edit(item: Any, ctx: Ctx) -> None:
        item.assets["red"].href = href(ctx)

    return edit


def _garbage(ctx: Ctx) -> str:
    path = ctx.tmp / "garbage.TIF"
    path.write_bytes(b"II*\x00" + b"not a tiff " * 200)
    return f"file://{path}"


# --- model files ---------------------------------------------------------------------


def _model_dir(ctx: Ctx) -> Path:
    """A saved network (STARFM-like classic models carry no weights worth reading)."""
    path = ctx.tmp / "model"
    create_model("resstf", ("red", "nir"), size="tiny", device="cpu").save(path)
    return path


def _corrupt_weights(ctx: Ctx) -> tuple[int, str]:
    path = _model_dir(ctx)
    weights = path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    return lib(lambda: load_model(path))


def _pickle_weights(ctx: Ctx) -> tuple[int, str]:
    path = _model_dir(ctx)
    torch.save({"weights": torch.zeros(3)}, path / "weights.safetensors")  # a pickle file
    return lib(lambda: load_model(path))


def _config_missing(ctx: Ctx) -> tuple[int, str]:
    path = _model_dir(ctx)
    (path / "config.json").unlink()
    return lib(lambda: load_model(path))


# --- manifests (stf evaluate) ---------------------------------------------------------


def _manifest(edit: Callable[[dict], None] | None) -> Callable[[Ctx], tuple[int, str]]:
    def action(ctx: Ctx) -> tuple[int, str]:
        data = manifests._world(ctx.tmp)
        if edit is not None:
            edit(data)
        path = manifests._write(ctx.tmp, data)
        return cli(["evaluate", str(path), "--model", "naive_change", "--json"])

    return action


CONFIG_REF = "tests/test_config.py, tests/test_run.py::test_bad_config_inputs_exit_2"
MANIFEST_REF = "tests/evaluate/test_manifest.py::test_bad_manifest_names_the_field"
CASES: tuple[Case, ...] = (
    Case(
        "config file missing",
        "config",
        lambda c: cli(["run", str(c.tmp / "no.yaml")]),
        2,
        "cannot read",
    ),
    Case(
        "config not YAML", "config", lambda c: _cfg(c, "region: [unclosed\n"), 2, "not valid YAML"
    ),
    Case(
        "config python tag",
        "config",
        lambda c: _cfg(c, "region: !!python/object/apply:os.getcwd []\n"),
        2,
        "not valid YAML",
    ),
    Case("config is a list", "config", lambda c: _cfg(c, "- a\n- b\n"), 2, "mapping"),
    Case(
        "unknown field", "config", lambda c: _cfg(c, colour="red"), 2, "unknown field", CONFIG_REF
    ),
    Case("region missing", "config", _without("region"), 2, "region: required"),
    Case(
        "bbox out of range",
        "config",
        lambda c: _cfg(c, region={"name": "x", "bbox": [190, 45, 191, 46]}),
        2,
        "longitudes",
    ),
    Case(
        "end before start",
        "config",
        lambda c: _cfg(c, time=_time("2024-06-10", "2024-06-01")),
        2,
        "before start",
        CONFIG_REF,
    ),
    Case(
        "unknown model",
        "config",
        lambda c: _cfg(c, model={"name": "nope"}),
        2,
        "unknown model",
        CONFIG_REF,
    ),
    Case("unknown band", "config", lambda c: _cfg(c, bands=["red", "thermal"]), 2, "unknown band"),
    Case(
        "resolution off the Landsat grid",
        "config",
        lambda c: _cfg(c, grid={"resolution": 45}),
        2,
        "multiple of Landsat",
    ),
    Case(
        "store path escapes output_root",
        "config",
        lambda c: _cfg(c, store={"path": "../../elsewhere.zarr"}),
        2,
        "store.path",
        "tests/reliability/test_security.py",
    ),
    Case("STAC url not http", "config", lambda c: _cfg(c, stac={"url": "ftp://x"}), 2, "stac.url"),
    Case(
        "unknown collection",
        "config",
        lambda c: _cfg(c, collections={"fine": "sentinel-2-l2a"}),
        2,
        "unknown fine collection",
    ),
    Case(
        "zero workers",
        "config",
        lambda c: _cfg(c, compute={"n_workers": 0}),
        2,
        "compute.n_workers",
    ),
    Case("unknown command", "cli", lambda c: cli(["fuse-everything"]), 2, "No such command"),
    Case("run without config", "cli", lambda c: cli(["run"]), 2, "Missing argument"),
    Case(
        "non-integer option",
        "cli",
        lambda c: cli(["evaluate", "m.yaml", "--model", "starfm", "--epochs", "many"]),
        2,
        "--epochs",
    ),
    Case(
        "manifest missing",
        "manifest",
        lambda c: cli(["evaluate", str(c.tmp / "no.yaml"), "--model", "starfm"]),
        2,
        "no.yaml",
    ),
    Case(
        "manifest date without coarse",
        "manifest",
        _manifest(manifests._drop_coarse),
        2,
        "dates[1].coarse",
        MANIFEST_REF,
    ),
    Case(
        "manifest raster missing",
        "manifest",
        _manifest(manifests._missing_file),
        2,
        "dates[2].fine",
        MANIFEST_REF,
    ),
    Case(
        "manifest wrong ratio",
        "manifest",
        _manifest(manifests._bad_ratio),
        2,
        "dates[0].coarse",
        MANIFEST_REF,
    ),
    Case(
        "manifest predict not a date of it",
        "manifest",
        _manifest(manifests._not_a_date),
        2,
        "predict",
        MANIFEST_REF,
    ),
    Case(
        "STAC item without the red asset",
        "stac",
        lambda c: _cubes(c, lambda it, _c: it.assets.pop("red"), every=False),
        2,
        "has no asset",
    ),
    Case(
        "STAC absurd proj:transform",
        "stac",
        lambda c: _cubes(
            c, lambda it, _c: it.properties.update({"proj:transform": [1e9, 0, 0, 0, -1e9, 0]})
        ),
        2,
        "clear",
    ),
    Case(
        "no items for the region",
        "stac",
        lambda c: lib(
            lambda: search_items(
                parse_config(
                    run_config(
                        c.world,
                        c.stac_url,
                        c.out,
                        region={"name": "x", "bbox": [11.0, 45.0, 11.1, 45.1]},
                    )
                ),
                c.stac_url,
            )
        ),
        2,
        "no landsat-c2-l2 items",
        "tests/catalog/test_search.py::test_bad_searches_say_what_was_searched",
    ),
    Case(
        "corrupted COG",
        "raster",
        lambda c: _cubes(c, _set_red(_garbage)),
        3,
        "cannot read asset",
    ),
    Case(
        "all-nodata raster",
        "raster",
        lambda c: _cubes(
            c, _set_red(lambda x: _red_like(x, "zero.TIF", np.zeros((96, 96), np.uint16)))
        ),
        2,
        "clear",
    ),
    Case(
        "float raster where uint16 is due",
        "raster",
        lambda c: _cubes(
            c, _set_red(lambda x: _red_like(x, "float.TIF", np.full((96, 96), 0.3, np.float32)))
        ),
        2,
        "clear",
    ),
    Case(
        "raster in another CRS",
        "raster",
        lambda c: _cubes(
            c,
            _set_red(
                lambda x: _red_like(x, "crs.TIF", np.full((96, 96), 9000, np.uint16), "EPSG:4326")
            ),
        ),
        2,
        "clear",
    ),
    Case(
        "truncated safetensors",
        "model",
        _corrupt_weights,
        2,
        "cannot load model weights",
        "tests/models/test_starfm.py (safetensors round trip)",
    ),
    Case(
        "config.json missing",
        "model",
        _config_missing,
        2,
        "cannot read model config",
        "tests/models/test_registry.py::test_load_model_errors",
    ),
    Case("pickle offered as weights", "model", _pickle_weights, 2, "cannot load model weights"),
)


def _existing_outputs(out: Path) -> None:
    """A real store and a saved model under ``out``: what no failing run may touch."""
    grid = Grid(
        y=4_995_825 - 30 * np.arange(16, dtype=np.float64),
        x=576_975 + 30 * np.arange(16, dtype=np.float64),
        crs_wkt=rasterio.crs.CRS.from_epsg(32632).to_wkt(),
    )
    days = [dt.date(2024, 6, 8) + dt.timedelta(days=i) for i in range(3)]
    prepare_store(str(out / "fusion.zarr"), grid, days, StoreLayout(("red", "nir")), "tiny")
    create_model("starfm", ("red", "nir"), size="tiny", device="cpu").save(out / "models" / "m")


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
        digest.update(json.dumps(path.is_dir()).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`_existing_outputs` written once; each case gets a copy (the same bytes)."""
    out = tmp_path_factory.mktemp("outputs") / "out"
    _existing_outputs(out)
    return out


@pytest.fixture(scope="module")
def search(tiny_world: World, stac_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The trial run's search, pair days only for the coarse side (fast loads)."""
    cfg = parse_config(run_config(tiny_world, stac_url, tmp_path_factory.mktemp("s")))
    result = search_items(cfg, stac_url)
    pair_days = {it.datetime.date() for it in result.fine}
    coarse = [it for it in result.coarse if it.datetime and it.datetime.date() in pair_days]
    return SearchResult(fine=result.fine, coarse=coarse or result.coarse, url=result.url)


def test_the_matrix_covers_every_kind_of_input() -> None:
    kinds = {case.kind for case in CASES}
    assert len(CASES) >= 25 and kinds == {"config", "cli", "manifest", "stac", "raster", "model"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_a_documented_code_and_touches_nothing(
    case: Case,
    tiny_world: World,
    stac_url: str,
    search: SearchResult,
    outputs: Path,
    tmp_path: Path,
) -> None:
    out = shutil.copytree(outputs, tmp_path / "out")
    before = _digest(out)
    ctx = Ctx(tmp_path / "case", out, tiny_world, stac_url, search)
    ctx.tmp.mkdir()
    code, line = case.action(ctx)
    assert code == case.code and code in DOCUMENTED, (code, line)
    assert case.needle in line and "\n" not in line, line
    assert "Traceback" not in line
    assert _digest(out) == before, "an existing output changed"
