"""Run provenance stored in the store's ``stf_provenance`` attr (a JSON string).

The latest run's record sits at the top level; earlier runs on the same store
(extensions over new dates, resumed runs) are kept, oldest first, under
``previous_runs`` so that nothing about old days is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.security import redact

#: Packages whose versions decide the bytes of a run.
_SOFTWARE = ("stf-pipeline", "numpy", "torch", "xarray", "zarr", "dask", "distributed", "odc-stac")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    """Installed versions of the packages that matter (missing ones omitted)."""
    out = {}
    for name in _SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_record(
    *,
    config: dict[str, Any],
    fine_items: list[str],
    coarse_items: list[str],
    model: dict[str, Any],
    pair_choice: dict[str, Any],
    days: tuple[dt.date, dt.date],
    skipped_items: Sequence[Mapping[str, str]] = (),
    model_selection: dict[str, Any] | None = None,
    coregistration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record of one run (JSON-ready).

    Parameters
    ----------
    config : the run config (``RunConfig.model_dump(mode="json")``).
    fine_items, coarse_items : STAC item ids used.
    model : ``{"name", "weights_sha256", "config"}`` of the fusion model.
    pair_choice : the reference-pair rule and the choices made per block.
    days : first and last target day written by this run.
    skipped_items : STAC items left out because an asset could not be read, each
        ``{"item", "collection", "asset", "href", "reason"}`` (href already redacted).
    model_selection : with ``model.select``, the leave-one-pair-out ``table``,
        ``summary``, ``choice`` and ``rule`` (:class:`pipeline.select.SelectionResult`).
    coregistration : the coarse shift estimated and applied before training and fusion
        (:class:`pipeline.coregister.Coregistration` as a dict).
    """
    record = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "days": [days[0].isoformat(), days[1].isoformat()],
        "config": redact(config),
        "stac_items": {"fine": sorted(fine_items), "coarse": sorted(coarse_items)},
        "skipped_items": redact([dict(item) for item in skipped_items]),
        "model": model,
        "pair_choice": pair_choice,
        "software": software_versions(),
    }
    if model_selection is not None:
        record["model_selection"] = model_selection
    if coregistration is not None:
        record["coregistration"] = coregistration
    return record


def merge(previous_json: str | None, record: dict[str, Any]) -> str:
    """``stf_provenance`` after this run: ``record`` on top, older runs under ``previous_runs``."""
    history: list[dict[str, Any]] = []
    if previous_json:
        previous = json.loads(previous_json)
        history = previous.pop("previous_runs", [])
        history.append(previous)
    return json.dumps({**record, "previous_runs": history}, default=str)
