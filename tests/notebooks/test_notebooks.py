"""The notebooks: stored without outputs, and executed end to end against a tiny demo run."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

from pipeline.catalog.server import serve_catalog
from pipeline.config import parse_config
from pipeline.products import run_products
from pipeline.run import run, store_url
from pipeline.synth import World
from tests.notebooks.demo_like import DemoRun, run_demo_like

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

#: The kernel the notebooks run on: this interpreter (the venv), installed into its prefix.
KERNEL = "stf-pipeline"


def test_three_notebooks_with_no_stored_outputs() -> None:
    assert len(NOTEBOOKS) == 3
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.fixture(scope="session")
def venv_kernel() -> str:
    """A kernelspec of this interpreter in ``sys.prefix`` (``ipykernel install --sys-prefix``).

    A named spec, not the generic ``python3``: a user-level ``python3`` spec pointing at
    another interpreter would shadow it. Installed once; reinstalled if it points elsewhere.
    """
    from ipykernel.kernelspec import install

    try:
        argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
    except NoSuchKernel:
        argv = []
    if not argv or Path(argv[0]) != Path(sys.executable):
        install(kernel_name=KERNEL, display_name="Python (stf pipeline)", prefix=sys.prefix)
    return KERNEL


@pytest.fixture(scope="session")
def demo_out(tiny_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny six-band demo run (store + NDVI, phenology, crop map and feeds)."""
    return _demo_run(tiny_world, tmp_path_factory.mktemp("demo-out"), bands=None)


@pytest.fixture(scope="session")
def demo_like(
    tiny_world: World, stac_url: str, tmp_path_factory: pytest.TempPathFactory
) -> DemoRun:
    """``make demo``'s command line path with the demo's settings on the tiny world."""
    return run_demo_like(tiny_world, stac_url, tmp_path_factory.mktemp("demo-like"))


def _demo_run(tiny_world: World, out: Path, bands: tuple[str, ...] | None) -> Path:
    """Run the tiny world end to end into ``out`` (``bands`` None: the default six)."""
    labels = tiny_world.truth_dir / "fields.parquet"
    with serve_catalog(tiny_world.stac_dir) as url:
        cfg = parse_config(
            {
                "region": {"name": "demo-tiny", "bbox": list(tiny_world.bbox)},
                "time": {"start": "2024-06-01", "end": "2024-07-05"},
                "stac": {"url": url},
                "model": {"name": "starfm", "size": "tiny"},
                "chunks": {"y": 64, "x": 64, "time": 16},  # 2 x 2 blocks: fewer read tasks
                "store": {"path": "demo.zarr"},
                "products": {
                    "ndvi": True,
                    "phenology": True,
                    "cropmap": True,
                    "feeds": True,
                    "labels": str(labels),
                },
                "output_root": str(out),
                **({"bands": list(bands)} if bands else {}),
            }
        )
        run(cfg, progress=False, log=lambda _line: None)
    run_products(store_url(cfg), cfg.products, out, run_id="demo")
    return out


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """Every output of the notebook's code cells."""
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(
    path: Path, demo_out: Path, venv_kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STF_DEMO_OUT", str(demo_out))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name=venv_kernel, resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= 3, f"{path.name} produced {figures} figures"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_from_notebooks_folder_on_a_demo_like_run(
    path: Path, demo_like: DemoRun, venv_kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user does: Jupyter started in notebooks/, the run named by a relative path.

    The run is ``make demo``'s path (the CLI, the demo's green/red/NIR bands, model and
    products) on the tiny world: the real ``make demo`` takes minutes of CPU.
    """
    monkeypatch.setenv("STF_DEMO_OUT", os.path.relpath(demo_like.out, path.parent))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name=venv_kernel, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    if "hvplot" in "".join(c.source for c in nb.cells):  # the interactive cells rendered
        assert any(
            "application/vnd.holoviews_load.v0+json" in o.get("data", {})
            or "application/vnd.holoviews_exec.v0+json" in o.get("data", {})
            for o in outputs
        ), path.name
    if path.name.startswith("01"):  # the input cubes are shown before the store
        text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "Landsat cube" in text and "MODIS cube" in text and "clear" in text


#: A library warning's class name in a log line (RuntimeWarning, ZarrUserWarning, ...).
WARNING_CLASS = re.compile(r"\b[A-Z]\w*Warning\b")


@pytest.mark.slow
def test_demo_log_reads_well(demo_like: DemoRun) -> None:
    """The log of ``make demo``'s path: short lines, no library warning leaked into it."""
    log = demo_like.log.read_text()
    assert "[fuse] done" in log and "[products]" in log
    for name, text in (
        ("log file", log),
        ("stdout", demo_like.stdout),
        ("stderr", demo_like.stderr),
    ):
        long = [line[:120] for line in text.splitlines() if len(line) > 300]
        assert not long, f"{name}: {len(long)} line(s) over 300 characters: {long[:2]}"
        assert "\r" not in text, f"{name}: carriage-return redraws"
        leaked = [line[:200] for line in text.splitlines() if WARNING_CLASS.search(line)]
        assert not leaked, f"{name}: library warnings leaked: {leaked[:3]}"
