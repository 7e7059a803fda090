"""What a store holds, in one look: days, bands, completion, coverage and provenance.

Read-only; used by ``stf info STORE``. Completion comes from ``block_done`` (the
commit record), coverage from the ``quality`` flags of the written pixel-days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.store.layout import FUSED, GAP, OBSERVED
from pipeline.store.write import DONE, PROVISIONAL, open_store


@dataclass(frozen=True)
class StoreInfo:
    """Summary of a store.

    Attributes
    ----------
    url : the store.
    first_day, last_day : ISO dates of the time axis; ``n_days`` its length.
    bands : fused reflectance bands; ``variables`` every data variable.
    shape : (y, x) pixels; ``crs`` the grid CRS (``EPSG:n`` or its name).
    chunks : (time, y, x) of the Zarr chunks of the value variables.
    done, provisional : fractions of (day, block) cells final / provisional.
    observed, fused, gap : fractions of all pixel-days with that quality flag.
    provenance : the latest run's ``model``, ``software``, ``days``, ``created``,
        skipped item count and the number of earlier runs.
    """

    url: str
    first_day: str
    last_day: str
    n_days: int
    bands: tuple[str, ...]
    variables: tuple[str, ...]
    shape: tuple[int, int]
    crs: str
    chunks: tuple[int, ...]
    done: float
    provisional: float
    observed: float
    fused: float
    gap: float
    provenance: dict[str, Any] = field(default_factory=dict)


def _crs_name(ds: Any) -> str:
    crs = ds.rio.crs if hasattr(ds, "rio") else None
    if crs is None:
        return "unknown"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else str(crs.to_string())[:60]


def _provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    raw = attrs.get("stf_provenance")
    if not raw:
        return {}
    record = json.loads(raw)
    model = record.get("model", {})
    return {
        "model": model.get("name"),
        "weights_sha256": (model.get("weights_sha256") or "")[:12],
        "run_days": record.get("days"),
        "created": record.get("created"),
        "stf_version": record.get("software", {}).get("stf-pipeline"),
        "skipped_items": len(record.get("skipped_items", [])),
        "earlier_runs": len(record.get("previous_runs", [])),
    }


def store_info(url: str) -> StoreInfo:
    """Summarise the store at ``url`` (reads ``block_done`` and ``quality`` in full).

    Raises
    ------
    FileNotFoundError, KeyError : not a store of this layout (the CLI turns it into one line).
    """
    import rioxarray  # noqa: F401  (the .rio accessor for the CRS)

    ds = open_store(url)
    done = np.asarray(ds["block_done"].values)
    quality = ds["quality"].data
    n = max(int(np.prod(quality.shape)), 1)
    counts = [int((quality & flag > 0).sum().compute()) for flag in (OBSERVED, FUSED, GAP)]
    times = pd.DatetimeIndex(ds["time"].values)
    bands = tuple(ds.attrs.get("stf_bands", []))
    enc = ds[bands[0]].encoding if bands else {}
    return StoreInfo(
        url=url,
        first_day=times[0].date().isoformat(),
        last_day=times[-1].date().isoformat(),
        n_days=len(times),
        bands=bands,
        variables=tuple(ds.data_vars),
        shape=(ds.sizes["y"], ds.sizes["x"]),
        crs=_crs_name(ds),
        chunks=tuple(enc.get("shards") or enc.get("chunks") or ()),
        done=float((done == DONE).mean()) if done.size else 0.0,
        provisional=float((done == PROVISIONAL).mean()) if done.size else 0.0,
        observed=counts[0] / n,
        fused=counts[1] / n,
        gap=counts[2] / n,
        provenance=_provenance(dict(ds.attrs)),
    )
