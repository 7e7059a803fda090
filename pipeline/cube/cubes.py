"""Analysis-ready cubes: fine and coarse reflectance on aligned grids, masked, with pairs.

Data flow of :func:`load_cubes`: target grids -> reads, scaled, masked and same-day
merged (a :class:`~pipeline.cube.scenes.SceneReader`: one task per cube chunk with the
odc backend) -> clear fractions -> pairs -> coarse shift estimated and undone
(``grid.coregister``, :mod:`pipeline.cube.coregister_cubes`).

The coarse cube is read directly onto the coarse grid (``grid.resolution ×
coarse_factor``, same origin as the fine grid) with GDAL ``average``
resampling from MODIS sinusoidal, so each coarse cell is the mean of the MODIS
pixels it overlaps; QA is read ``nearest`` (averaging bit flags is
meaningless). ``coarse_on_fine`` block-replicates it onto the fine grid.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import dask
import numpy as np
import pystac
import xarray as xr
from dask.callbacks import Callback
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords
from rasterio.errors import RasterioError

from pipeline.catalog.gdal_env import configure_client, read_settings
from pipeline.catalog.search import SearchResult
from pipeline.catalog.signing import AssetSigner, asset_signer
from pipeline.config import RunConfig
from pipeline.coregister import Coregistration
from pipeline.cube.coregister_cubes import coregister
from pipeline.cube.grid import grid_anchor, target_grids
from pipeline.cube.load import READERS, Reader
from pipeline.cube.pairs import DEFAULT_MIN_CLEAR, Pair, find_pairs
from pipeline.cube.scene_read import OdcSceneReader
from pipeline.cube.scenes import AssetScenes, SceneReader, asset_specs, lazy_scenes
from pipeline.cube.unreadable import SkippedItem, unreadable_items
from pipeline.errors import InputError, ServiceError
from pipeline.sensors import Sensor, sensor

#: ``progress(done, total)`` is called as clear-fraction tasks finish.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Cubes:
    """Fine and coarse cubes on aligned grids (see docs/CONTRACTS.md).

    Attributes
    ----------
    fine : (time, band, y, x) float32 reflectance, NaN = nodata/cloud/shadow, dask-backed,
        on ``geobox``; ``time`` = Landsat solar day; coord ``clear_fraction`` (time,).
    coarse : (time, band, y, x) float32 on ``coarse_geobox``; coord ``clear_fraction``.
    coarse_on_fine : ``coarse`` block-replicated onto ``geobox`` (nearest), lazy.
    geobox, coarse_geobox : the fine (e.g. 30 m UTM) and coarse grids, same origin.
    pairs : usable fine scenes with a coarse scene the same day.
    fine_ids, coarse_ids : STAC item ids read (the searched items less ``skipped``).
    skipped : items left out because an asset of theirs cannot be read (see
        :mod:`pipeline.cube.unreadable`); their scenes are in neither cube.
    coregistration : the coarse shift estimated and undone (``grid.coregister``), or None.
    """

    fine: xr.DataArray
    coarse: xr.DataArray
    coarse_on_fine: xr.DataArray
    geobox: GeoBox
    coarse_geobox: GeoBox
    pairs: list[Pair] = field(default_factory=list)
    fine_ids: tuple[str, ...] = ()
    coarse_ids: tuple[str, ...] = ()
    skipped: tuple[SkippedItem, ...] = ()
    coregistration: Coregistration | None = None

    @property
    def fine_clear(self) -> xr.DataArray:
        """Per-time clear fraction of ``fine``, (time,) in [0, 1]."""
        return self.fine["clear_fraction"]

    @property
    def coarse_clear(self) -> xr.DataArray:
        """Per-time clear fraction of ``coarse``, (time,) in [0, 1]."""
        return self.coarse["clear_fraction"]


@dataclass(frozen=True)
class CubeFacts:
    """What :func:`load_cubes` learnt by reading every scene once, to rebuild the same cubes.

    Later steps of a run (model, fuse) pass these to :func:`load_cubes` instead of
    reading every asset again for the clear fractions (a full read of the season).

    Attributes
    ----------
    fine_clear, coarse_clear : per merged scene (time order) clear fraction in [0, 1].
    skipped : items left out because an asset of theirs could not be read.
    coregistration : the coarse shift applied (reused, not estimated again).
    """

    fine_clear: tuple[float, ...]
    coarse_clear: tuple[float, ...]
    skipped: tuple[SkippedItem, ...] = ()
    coregistration: Coregistration | None = None

    @classmethod
    def of(cls, cubes: Cubes) -> CubeFacts:
        """The facts of loaded cubes."""
        return cls(
            tuple(float(c) for c in cubes.fine_clear.values),
            tuple(float(c) for c in cubes.coarse_clear.values),
            cubes.skipped,
            cubes.coregistration,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``cubes.json`` of a run)."""
        return {
            "fine_clear": list(self.fine_clear),
            "coarse_clear": list(self.coarse_clear),
            "skipped": [asdict(s) for s in self.skipped],
            "coregistration": self.coregistration and self.coregistration.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CubeFacts:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(data["fine_clear"]),
            tuple(data["coarse_clear"]),
            tuple(SkippedItem(**s) for s in data.get("skipped", [])),
            Coregistration.from_dict(data.get("coregistration")),
        )


def load_cubes(
    cfg: RunConfig,
    result: SearchResult,
    backend: str = "odc",
    *,
    reader: Reader | None = None,
    min_clear: float = DEFAULT_MIN_CLEAR,
    max_gap_days: int = 0,
    progress: Progress | None = None,
    facts: CubeFacts | None = None,
) -> Cubes:
    """Load the searched items as masked cubes on the run's grid and find reference pairs.

    Parameters
    ----------
    cfg : run configuration (grid, bands, chunks, collections).
    result : items from :func:`pipeline.catalog.search.search_items`.
    backend : ``"odc"`` (odc-stac) or ``"stackstac"``; ignored when ``reader`` is given.
    reader : a custom per-asset :class:`~pipeline.cube.load.Reader` (masked and merged by
        :class:`~pipeline.cube.scenes.AssetScenes`).
    min_clear : a fine/coarse scene needs this clear fraction to form a pair.
    max_gap_days : largest allowed day gap between the fine and coarse scene of a pair.
    progress : called with (done, total) while clear fractions are computed.
    facts : the :class:`CubeFacts` of an earlier load of the same items: their
        skipped items are left out and their clear fractions used, nothing is read.

    An item with an asset that cannot be read (probed after a failed read, each
    asset opened up to ``READ_ATTEMPTS`` times) is left out before same-day
    scenes are merged, so another item of that day still counts; the cubes
    list it in ``skipped`` and never hold a value for it.

    Raises
    ------
    InputError
        Unknown backend, a band the coarse collection lacks, or no usable fine scene.
    ServiceError
        A read failed although every asset opens; or the unreadable items leave
        no item of a collection, no clear fine scene or no pair.
    """
    read = AssetScenes(reader) if reader else _reader(backend, asset_signer(cfg.stac))
    configure_client(_current_client(), *read_settings(cfg.stac))
    fine_sensor, coarse_sensor = sensor(cfg.collections.fine), sensor(cfg.collections.coarse)
    _check_bands(cfg, coarse_sensor)
    geobox, coarse_geobox = target_grids(cfg, grid_anchor(result.fine))
    factor = cfg.grid.coarse_factor
    gone = {s.item for s in facts.skipped} if facts else set()
    fine_items = [it for it in result.fine if it.id not in gone]
    coarse_items = [it for it in result.coarse if it.id not in gone]
    skipped: list[SkippedItem] = list(facts.skipped) if facts else []

    def build(clear_pass: bool = False) -> tuple[xr.DataArray, xr.DataArray]:
        # the clear pass reads scene-sized chunks; the cubes that the fuse stage streams
        # keep chunks near its blocks (pipeline.cube.chunking)
        return lazy_scenes(cfg, fine_items, coarse_items, read, (geobox, coarse_geobox), clear_pass)

    if facts is not None:
        fine, coarse = _with_known_clear(*build(), facts)
    while facts is None:  # each pass either reads every kept asset or drops >= 1 more item
        try:
            fine, coarse = _with_clear_fractions(*build(clear_pass=True), progress)
            fine, coarse = _with_clear_of(*build(), fine, coarse)
            break
        except _ReadFailed as failed:
            signer = asset_signer(cfg.stac)
            lost = _unreadable(fine_items, fine_sensor, cfg.bands, signer)
            lost += _unreadable(coarse_items, coarse_sensor, cfg.bands, signer)
            if not lost:
                raise failed.error() from None
            skipped += lost
            gone = {s.item for s in lost}
            fine_items = [it for it in fine_items if it.id not in gone]
            coarse_items = [it for it in coarse_items if it.id not in gone]
            if not fine_items or not coarse_items:
                raise _refusal(skipped, "no item of its collection is readable") from None
    if float(fine["clear_fraction"].max()) < min_clear:
        if skipped:
            raise _refusal(skipped, f"no {cfg.collections.fine} scene left is clear enough")
        raise InputError(
            f"every {cfg.collections.fine} scene ({fine.sizes['time']}) is under "
            f"{min_clear:.0%} clear over the region; widen the dates or move the region"
        )
    cubes = Cubes(
        fine=fine,
        coarse=coarse,
        coarse_on_fine=block_upsample(coarse, factor, geobox),
        geobox=geobox,
        coarse_geobox=coarse_geobox,
        fine_ids=tuple(it.id for it in fine_items),
        coarse_ids=tuple(it.id for it in coarse_items),
        skipped=tuple(skipped),
    )
    pairs = find_pairs(cubes, min_clear=min_clear, max_gap_days=max_gap_days)
    if skipped and not pairs:
        raise _refusal(skipped, "no clear fine/coarse pair is left")
    known = facts.coregistration if facts is not None else None
    coarse, record = coregister(fine, coarse, pairs, factor, cfg.grid.coregister, known)
    return replace(
        cubes,
        pairs=pairs,
        coarse=coarse,
        coarse_on_fine=block_upsample(coarse, factor, geobox),
        coregistration=record,
    )


def _refusal(skipped: Sequence[SkippedItem], consequence: str) -> ServiceError:
    """The one-line error when the unreadable assets leave nothing to fuse."""
    first = skipped[0]
    more = f" and {len(skipped) - 1} more item(s)" if len(skipped) > 1 else ""
    return ServiceError(
        f"cannot read asset {first.href} ({first.reason}) of {first.item}{more}, "
        f"and without them {consequence}; check the asset server, or re-run the search"
    )


def _unreadable(
    items: Sequence[pystac.Item], sensor_: Sensor, bands: tuple[str, ...], signer: AssetSigner
) -> list[SkippedItem]:
    """Items with an asset the run reads that does not open (probed, see :mod:`.unreadable`)."""
    keys = dict.fromkeys(spec.key for spec in asset_specs(sensor_, bands, "nearest"))
    return unreadable_items(items, keys, signer=signer)


def _current_client() -> Any | None:
    """The active ``distributed.Client`` (its workers get the GDAL settings), if any."""
    from distributed import get_client

    try:
        return get_client()
    except ValueError:  # no client: the local threaded scheduler reads in this process
        return None


def _reader(backend: str, signer: AssetSigner) -> SceneReader:
    """The scene reader of ``backend``: odc reads each scene-chunk in one task (see scene_read)."""
    if backend not in READERS:
        raise InputError(f"unknown backend {backend!r}; use one of: {', '.join(READERS)}")
    if backend == "odc":
        return OdcSceneReader(signer or None)
    read = READERS[backend]
    return AssetScenes(functools.partial(read, signer=signer) if signer else read)  # type: ignore[call-arg]


def _check_bands(cfg: RunConfig, coarse: Sensor) -> None:
    missing = [b for b in cfg.bands if b not in coarse.assets]
    if missing:
        raise InputError(
            f"bands: {coarse.collection} has no band(s) {missing}; "
            f"use bands from {list(coarse.assets)} or another coarse collection"
        )


class _ReadFailed(Exception):
    """A read of the cubes failed; ``cause`` is the original error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause

    def error(self) -> Exception:
        """What to raise when every asset opens fine: the read error itself, one line."""
        exc = self.cause
        if not isinstance(exc, (RasterioError, OSError, RuntimeError)):
            return exc
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ServiceError(
            f"cannot read an asset ({cause}); check the asset server, or re-run the search"
        )


def _with_known_clear(
    fine: xr.DataArray, coarse: xr.DataArray, facts: CubeFacts
) -> tuple[xr.DataArray, xr.DataArray]:
    """``fine`` and ``coarse`` with the clear fractions of ``facts`` (nothing is read)."""
    if (len(facts.fine_clear), len(facts.coarse_clear)) != (
        fine.sizes["time"],
        coarse.sizes["time"],
    ):
        raise InputError(
            f"the cube facts list {len(facts.fine_clear)} fine / {len(facts.coarse_clear)} "
            f"coarse scenes but the items give {fine.sizes['time']} / {coarse.sizes['time']}; "
            "they come from another search: rerun the cubes step"
        )
    return (
        fine.assign_coords(clear_fraction=("time", np.asarray(facts.fine_clear, dtype=float))),
        coarse.assign_coords(clear_fraction=("time", np.asarray(facts.coarse_clear, dtype=float))),
    )


def _with_clear_of(
    fine: xr.DataArray, coarse: xr.DataArray, fine_known: xr.DataArray, coarse_known: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray]:
    """``fine`` and ``coarse`` with the clear fractions of the same scenes' clear-pass cubes."""
    return (
        fine.assign_coords(clear_fraction=("time", fine_known["clear_fraction"].values)),
        coarse.assign_coords(clear_fraction=("time", coarse_known["clear_fraction"].values)),
    )


def _with_clear_fractions(
    fine: xr.DataArray, coarse: xr.DataArray, progress: Progress | None
) -> tuple[xr.DataArray, xr.DataArray]:
    """``fine`` and ``coarse`` with their lazy ``clear_fraction`` computed (every asset is read).

    Raises
    ------
    _ReadFailed
        Any error of the read: odc-stac raises rasterio's error, stackstac wraps it in
        RuntimeError, and through a distributed client it can arrive as a bare Exception;
        a 404 names no file, so the caller probes the assets.
    """
    try:
        with _TaskProgress(progress):
            f_clear, c_clear = dask.compute(
                fine["clear_fraction"].data, coarse["clear_fraction"].data
            )
    except Exception as exc:
        raise _ReadFailed(exc) from exc
    return (
        fine.assign_coords(clear_fraction=("time", np.asarray(f_clear, dtype=float))),
        coarse.assign_coords(clear_fraction=("time", np.asarray(c_clear, dtype=float))),
    )


class _TaskProgress(Callback):
    """Reports (done, total) task counts of a local-scheduler compute to ``progress``."""

    def __init__(self, progress: Progress | None) -> None:
        super().__init__()
        self._progress = progress
        self._done = 0
        self._total = 0

    def _start_state(self, dsk: object, state: dict) -> None:
        self._total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))

    def _posttask(self, key: object, result: object, dsk: object, state: dict, id: object) -> None:
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, self._total)


def block_upsample(coarse: xr.DataArray, factor: int, geobox: GeoBox) -> xr.DataArray:
    """Block-replicated (nearest) upsampling of (..., yc, xc) by ``factor`` onto ``geobox``."""
    data = coarse.data.repeat(factor, axis=-2).repeat(factor, axis=-1)
    coords = {k: v for k, v in coarse.coords.items() if "y" not in v.dims and "x" not in v.dims}
    out = xr.DataArray(data, dims=coarse.dims, coords={**coords, **xr_coords(geobox)})
    return out.rename("coarse_on_fine")
