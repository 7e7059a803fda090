"""``stf run`` and the ``regional_run`` flow are one composition of the same stages.

The CLI (``pipeline.run.run``) and the flow (``flows.tasks`` -> ``pipeline.stages``) fuse
the tiny demo world into byte-identical stores, and every run option reaches both:
``store.overwrite`` (a store of another region is replaced, not refused) and ``resume``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.errors import StoreError
from pipeline.stages import store_url
from tests.flows.test_flows_regional_run import _inset

pytestmark = pytest.mark.slow

END = dt.date(2024, 6, 20)


def _config(world: Any, url: str, root: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "region": {"name": "demo-tiny", "bbox": _inset(world.bbox)},
        "time": {"start": "2024-06-08", "end": END.isoformat(), "search_margin_days": 8},
        "stac": {"url": url},
        "bands": ["green", "red", "nir"],
        "model": {"name": "starfm", "size": "tiny"},
        "chunks": {"y": 48, "x": 48, "time": 16},
        "compute": {"n_workers": 1},
        "products": {"ndvi": False},
        "output_root": str(root),
    }
    return {**data, **changes}


def _store_files(url: str) -> dict[str, bytes]:
    """Every chunk file of a local store; metadata (``zarr.json``: provenance, paths) left out."""
    root = Path(url)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    }


def test_stf_run_and_the_flow_write_byte_identical_stores(
    harness: None, tiny_world: Any, stac_url: str, cluster: str, tmp_path: Path
) -> None:
    from flows.regional_run import regional_run

    cli_data = _config(tiny_world, stac_url, tmp_path / "cli")
    cli_file = tmp_path / "cli.yaml"
    cli_file.write_text(yaml.safe_dump(cli_data))
    # the CLI on the session's cluster; the flow (thread runner) starts its own LocalCluster
    assert main(["run", str(cli_file), "--scheduler", cluster]) == 0

    schedule = {"cron": "0 6 * * *", "latency_days": 0, "active": False}
    flow_data = {**_config(tiny_world, stac_url, tmp_path / "flow"), "schedule": schedule}
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(yaml.safe_dump(flow_data))
    regional_run(str(flow_file), until=END)

    cli_store = store_url(parse_config(cli_data))
    flow_store = store_url(parse_config(_config(tiny_world, stac_url, tmp_path / "flow")))
    cli_files, flow_files = _store_files(cli_store), _store_files(flow_store)
    assert cli_files.keys() == flow_files.keys()
    assert len(cli_files) > 10
    differing = [name for name in cli_files if cli_files[name] != flow_files[name]]
    assert not differing, f"chunks differ between stf run and the flow: {differing[:5]}"


def _other_region_store(data: dict[str, Any]) -> str:
    """A store at the config's path that holds another region (as an earlier run left it)."""
    import xarray as xr

    url = store_url(parse_config(data))
    xr.Dataset(attrs={"stf_region": "elsewhere"}).to_zarr(url, mode="w", consolidated=True)
    return url


def test_overwrite_and_resume_reach_the_flow_as_they_reach_the_run(
    tiny_world: Any, stac_url: str, cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import tasks
    from flows.incremental import plan_window
    from pipeline import stages
    from pipeline.run import run

    # the run and the fuse task both fuse on the session's cluster (compute.scheduler)
    data = _config(tiny_world, stac_url, tmp_path, compute={"scheduler": cluster})
    _other_region_store(data)
    kept = parse_config(data)
    work = stages.run_dir(kept)
    cube_set = tasks.cubes.fn(kept, tasks.search.fn(kept, work), work)
    model_dir = tasks.model.fn(kept, cube_set)
    for refuse in (lambda: run(kept, progress=False, log=lambda _m: None),
                   lambda: tasks.fuse.fn(kept, cube_set, model_dir)):  # fmt: skip
        with pytest.raises(StoreError, match="holds region 'elsewhere'"):
            refuse()

    replace = parse_config({**data, "store": {"overwrite": True}})
    window = plan_window(replace, END)
    assert window is not None and window.start == replace.time.start
    assert run(replace, progress=False, log=lambda _m: None).tasks > 0
    _other_region_store(data)
    url = tasks.fuse.fn(replace, cube_set, model_dir)
    assert stages.FusedStore.load(url).url == store_url(replace)

    seen: dict[str, Any] = {}

    def record(*args: Any, **kwargs: Any) -> stages.FusedStore:
        seen.update(kwargs)
        return stages.FusedStore(store_url(kept))

    monkeypatch.setattr(stages, "fuse", record)
    tasks.fuse.fn(kept, cube_set, model_dir, resume=False)
    assert seen["resume"] is False
