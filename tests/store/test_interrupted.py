"""A store writer killed at each named point: readers see the whole template or none, and
the next preparation finishes the job (no traceback, no lost block)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipeline.errors import StoreError
from pipeline.store import faults, template
from pipeline.store.write import (
    done_mask,
    open_store,
    prepare_store,
    store_exists,
)
from tests.store.test_store import DAY0, LAYOUT, _days, _grid, _write


class _Killed(BaseException):
    """Stands for the SIGKILL in-process: nothing after the point runs."""


def _die_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    def hook(name: str) -> None:
        if name == point:
            raise _Killed(name)

    monkeypatch.setattr(template, "kill_point", hook)


@pytest.mark.parametrize("point", ["template-begin", "template-arrays"])
def test_killed_template_is_invisible_then_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    url = str(tmp_path / "s.zarr")
    _die_at(monkeypatch, point)
    with pytest.raises(_Killed):
        prepare_store(url, _grid(), _days(6), LAYOUT, "r1")
    monkeypatch.undo()
    assert not store_exists(url)
    if point == "template-arrays":  # arrays there, not published: readers get one line
        with pytest.raises(StoreError, match="not published yet"):
            open_store(url)
    state = prepare_store(url, _grid(), _days(6), LAYOUT, "r1")
    assert state.created and store_exists(url)
    _write(url, 0, 4, 0.5)
    assert done_mask(url, 0, 6)[:, 0, 1].tolist() == [True] * 4 + [False] * 2


def test_killed_extension_keeps_old_view_and_is_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(6), LAYOUT, "r1")
    _write(url, 0, 4, 0.25)
    before = open_store(url)["red"][:4].values.copy()
    _die_at(monkeypatch, "extend-resized")
    with pytest.raises(_Killed):
        prepare_store(url, _grid(), _days(12), LAYOUT, "r1")
    monkeypatch.undo()
    assert open_store(url).sizes["time"] == 6  # readers: the old, consistent axis
    # the resumed run may ask for fewer days than the killed one did
    state = prepare_store(url, _grid(), _days(9), LAYOUT, "r1")
    ds = open_store(url)
    assert state.extended and ds.sizes["time"] == 9 and ds.sizes["yblock"] == 2
    assert ds["time"].values[-1] == np.datetime64(DAY0 + dt.timedelta(days=8), "ns")
    arrays = zarr.open_group(url, mode="r", use_consolidated=False).arrays()
    time_dim = [a for _, a in arrays if (a.metadata.dimension_names or ("",))[0] == "time"]
    assert len(time_dim) == len(LAYOUT.variables) + 2 and {a.shape[0] for a in time_dim} == {9}
    np.testing.assert_array_equal(ds["red"][:4].values, before)
    assert done_mask(url, 0, 9)[:, 0, 1].tolist() == [True] * 4 + [False] * 5


def test_partial_store_with_commits_or_foreign_attrs_is_never_removed(tmp_path: Path) -> None:
    url = str(tmp_path / "s.zarr")
    prepare_store(url, _grid(), _days(4), LAYOUT, "r1")
    _write(url, 0, 4, 0.5)
    root = Path(url) / "zarr.json"
    meta = json.loads(root.read_text())
    meta.pop("consolidated_metadata")
    root.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="did not leave unfinished"):
        prepare_store(url, _grid(), _days(4), LAYOUT, "r1")
    assert (Path(url) / "block_done" / "zarr.json").exists()
    foreign = tmp_path / "other.zarr"
    zarr.open_group(str(foreign), mode="w", zarr_format=3).attrs["owner"] = "someone"
    with pytest.raises(StoreError, match="choose another store"):
        prepare_store(str(foreign), _grid(), _days(4), LAYOUT, "r1")
    assert (foreign / "zarr.json").exists()


_CHILD = """
import datetime as dt, sys
from tests.store.test_store import LAYOUT, _days, _grid
from pipeline.store.write import prepare_store
prepare_store(sys.argv[1], _grid(), _days(6), LAYOUT, "r1")
"""


@pytest.mark.parametrize("point", ["template-arrays", "template-done"])
def test_env_fault_hook_sigkills_the_writer_at_its_point(tmp_path: Path, point: str) -> None:
    url = str(tmp_path / "s.zarr")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, url],
        env={**os.environ, faults.ENV: point},
        start_new_session=True,  # the hook kills its process group: keep pytest out of it
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert store_exists(url) == (point == "template-done")
    assert prepare_store(url, _grid(), _days(6), LAYOUT, "r1").n_days == 6
    assert store_exists(url)


def test_kill_point_is_inert_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV, raising=False)
    for point in faults.POINTS:
        faults.kill_point(point)
    monkeypatch.setenv(faults.ENV, "block-values:3")
    faults.kill_point("template-begin")  # another point: nothing happens
