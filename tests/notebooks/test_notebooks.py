"""The notebooks: stored without outputs, and executed end to end against a tiny demo run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipeline.catalog.server import serve_catalog
from pipeline.config import parse_config
from pipeline.products import run_products
from pipeline.run import run, store_url
from pipeline.synth import World

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_three_notebooks_with_no_stored_outputs() -> None:
    assert len(NOTEBOOKS) == 3
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.fixture(scope="module")
def demo_out(tiny_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny demo run (store + products) in a fresh directory."""
    out = tmp_path_factory.mktemp("demo-out")
    with serve_catalog(tiny_world.stac_dir) as url:
        cfg = parse_config(
            {
                "region": {"name": "demo-tiny", "bbox": list(tiny_world.bbox)},
                "time": {"start": "2024-06-01", "end": "2024-07-05"},
                "stac": {"url": url},
                "model": {"name": "starfm", "size": "tiny"},
                "chunks": {"y": 48, "x": 48, "time": 16},
                "products": {"ndvi": True, "phenology": True, "feeds": False},
                "output_root": str(out),
            }
        )
        run(cfg, progress=False, log=lambda _line: None)
    run_products(store_url(cfg), cfg.products, out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, demo_out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STF_DEMO_OUT", str(demo_out))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
