"""Size before work: what a run will read, write and dispatch, estimated from the search alone.

Computed before any pixel is read, from the region's target grid (a GeoBox, no data),
the days, the bands, the items found and the chunking. A region that reaches well
beyond the items the endpoint holds (the demo world's few kilometres under a
continent-sized box), or a run above ``compute.max_run_gib``, is refused in one line
(:class:`~pipeline.errors.InputError`, exit 2) that gives the estimate and the
setting to change; nothing starts loading a grid the data cannot fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import shapely.geometry
from shapely.ops import unary_union

from pipeline.catalog.search import SearchResult
from pipeline.config import RunConfig
from pipeline.cube.grid import target_grids
from pipeline.errors import InputError

#: The fine items found must cover at least this fraction of the region (lon/lat area).
MIN_COVERAGE = 0.5

#: Bytes per stored pixel-day: int16 bands + ndvi + uncertainty, uint8 quality, two int16
#: reference-distance layers (``docs/CONTRACTS.md``, store layout).
_EXTRA_OUT_BYTES = 2 + 2 + 1 + 2 + 2

GIB = 1024**3


@dataclass(frozen=True)
class RunEstimate:
    """The size of a run, before any read.

    Attributes
    ----------
    shape : (y, x) fine pixels of the target grid.
    days : target days fused.
    bands : bands fused.
    fine_items, coarse_items : STAC items found.
    bytes_in : int16 source pixels read (fine items on the fine grid, coarse on the coarse
        grid, bands plus one QA layer each), bytes.
    bytes_out : the store's uncompressed size, bytes.
    tasks : fuse tasks (spatial blocks x store time chunks) for a new store.
    coverage : fraction of the region (lon/lat area) inside the fine items' footprints.
    """

    shape: tuple[int, int]
    days: int
    bands: int
    fine_items: int
    coarse_items: int
    bytes_in: int
    bytes_out: int
    tasks: int
    coverage: float

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def describe(self) -> str:
        """One line: pixels, days, bands, GiB in and out, tasks, coverage."""
        return (
            f"{self.shape[0]} x {self.shape[1]} px ({self.pixels / 1e6:.3g} Mpx), "
            f"{self.days} days, {self.bands} bands, {self.fine_items} fine + "
            f"{self.coarse_items} coarse items, ~{self.bytes_in / GIB:.3g} GiB in, "
            f"~{self.bytes_out / GIB:.3g} GiB out, {self.tasks} tasks, "
            f"{self.coverage * 100:.3g}% of the region covered by fine items"
        )


def _coverage(cfg: RunConfig, result: SearchResult) -> float:
    region = shapely.geometry.shape(cfg.region.geometry())
    footprints = [shapely.geometry.shape(it.geometry) for it in result.fine if it.geometry]
    if not footprints or region.area == 0:
        return 0.0
    return float(region.intersection(unary_union(footprints)).area / region.area)


def estimate(cfg: RunConfig, result: SearchResult) -> RunEstimate:
    """The size of the run ``cfg`` over the items of ``result`` (no pixel read)."""
    fine, coarse = target_grids(cfg)
    ny, nx = fine.shape
    days, bands = len(cfg.time.days()), len(cfg.bands)
    read = len(result.fine) * fine.shape.x * fine.shape.y
    read += len(result.coarse) * coarse.shape.x * coarse.shape.y
    blocks = math.ceil(ny / cfg.chunks.y) * math.ceil(nx / cfg.chunks.x)
    return RunEstimate(
        shape=(ny, nx),
        days=days,
        bands=bands,
        fine_items=len(result.fine),
        coarse_items=len(result.coarse),
        bytes_in=read * (bands + 1) * 2,
        bytes_out=ny * nx * days * (bands * 2 + _EXTRA_OUT_BYTES),
        tasks=blocks * math.ceil(days / cfg.chunks.time),
        coverage=_coverage(cfg, result),
    )


def check_size(cfg: RunConfig, size: RunEstimate) -> None:
    """InputError (one line with the estimate) if the run is beyond the data or the budget."""
    if size.coverage < MIN_COVERAGE:
        raise InputError(
            f"region {cfg.region.name!r} reaches beyond the data at "
            f"{cfg.stac.endpoint('fine').url}: "
            f"{size.describe()}; shrink region.bbox to where the catalog has scenes"
        )
    total_gib = (size.bytes_in + size.bytes_out) / GIB
    if total_gib > cfg.compute.max_run_gib:
        raise InputError(
            f"run over region {cfg.region.name!r} would move ~{total_gib:.3g} GiB, above "
            f"compute.max_run_gib = {cfg.compute.max_run_gib:g} ({size.describe()}); "
            "raise compute.max_run_gib or shrink the region or dates"
        )
