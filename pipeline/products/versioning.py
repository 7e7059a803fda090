"""Products are versioned by run: ``<out>/products/<run_id>/...``, never silently overwritten."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, StoreError

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def new_run_id() -> str:
    """A sortable UTC timestamp id, e.g. ``20261121T031500Z``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def run_dir(out_root: str | Path, run_id: str | None = None, overwrite: bool = False) -> Path:
    """Create and return ``<out_root>/products/<run_id>``.

    Raises
    ------
    StoreError
        The run directory already holds outputs and ``overwrite`` is False.
    InputError
        ``run_id`` has characters other than letters, digits, ``_ . -``.
    """
    run_id = run_id or new_run_id()
    if not _RUN_ID.match(run_id):
        raise InputError(f"run id {run_id!r} must use only letters, digits, '_', '.', '-'")
    path = Path(out_root) / "products" / run_id
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise StoreError(
                f"products run {path} already exists; pass --overwrite or another --run-id"
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {exc.strerror}; choose a writable --out") from None
    return path


def write_manifest(
    path: Path, store: str | Path, params: dict[str, Any], outputs: dict[str, Path]
) -> Path:
    """Record inputs, parameters and outputs of a products run in ``<path>/manifest.json``."""
    from pipeline import __version__

    doc = {
        "run_id": path.name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "store": str(store) if "://" in str(store) else str(Path(store).resolve()),
        "software_version": __version__,
        "params": params,
        "outputs": {k: str(Path(v).relative_to(path)) for k, v in outputs.items()},
    }
    out = path / "manifest.json"
    out.write_text(json.dumps(doc, indent=2, default=str))
    return out
