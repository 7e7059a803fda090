"""How the cubes are cut into dask chunks: the shape of the graph, hence its task count.

With a per-asset reader every chunk of a cube costs one read task per asset plus a few
masking tasks, so a graph's size is ``chunks x (assets + bands)``; the odc backend's
scene reader (:mod:`pipeline.cube.scene_read`) makes one task per chunk of all bands.
With one-day chunks the size of the store's blocks (256 px fine, 16 px coarse) a Landsat
tile-year (7000 px, 365 days, 6 bands) would be ~300 k coarse chunks and millions of
tasks on one scheduler.
The rules below keep the count near the number of spatial chunks
(``benchmarks/results.md``, "Task budget"):

* **coarse cube**: chunks of :data:`COARSE_DAYS` days; spatially, the coarse pixels
  under :data:`FINE_READ_PX` fine pixels (a 480 m chunk of 16 px held 16 coarse px
  per side for a whole task each);
* **fine cube**: one scene per chunk (a scene is what one read opens) and
  :data:`FINE_READ_PX` px a side: a multiple of the store block, so a fuse group of
  blocks reads whole chunks;
* **clear-fraction pass**: scene-sized tasks, :data:`CLEAR_PX` px a side fine and the
  whole coarse grid up to :data:`COARSE_CLEAR_PX` coarse px, the coarse days
  :data:`CLEAR_COARSE_DAYS` at a time (a task reads every asset of its days, so fewer
  days keep a season's coarse pass spread over the workers). It reads every asset
  once (the read check) and keeps one number per scene.

Memory bounds: a fine read chunk is ``FINE_READ_PX**2 x 4 B`` (1 MiB) per band; a
clear-pass task of the scene reader holds one day's assets at ``CLEAR_PX**2 x 2 B`` each
plus a few boolean planes (~70 MiB for 7 Landsat assets).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import RunConfig

#: Side (fine px) of the fine cube's chunks, rounded up to whole store blocks.
FINE_READ_PX = 512
#: Days per chunk of the coarse cube (a coarse day is a few kB per chunk).
COARSE_DAYS = 32
#: Days per task of the clear-fraction pass over the coarse cube.
CLEAR_COARSE_DAYS = 8
#: Side (fine px) of the clear-fraction pass's fine tasks: scene-sized up to this.
CLEAR_PX = 2048
#: Side (coarse px) of the clear-fraction pass's coarse tasks (a MODIS tile is 2400 px).
COARSE_CLEAR_PX = 1024

#: dask chunks of one cube: ``{"time": days, "y": px, "x": px}``.
Chunks = dict[str, int]


@dataclass(frozen=True)
class CubeChunking:
    """Chunks of the four lazy cubes a load builds (fine and coarse, fusion and clear pass).

    Attributes
    ----------
    fine, coarse : chunks of the cubes the model and the fuse stage read.
    clear_fine, clear_coarse : chunks of the clear-fraction pass (read once, reduced).
    """

    fine: Chunks
    coarse: Chunks
    clear_fine: Chunks
    clear_coarse: Chunks


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def cube_chunking(cfg: RunConfig, fine_shape: tuple[int, int]) -> CubeChunking:
    """The chunks of a run's cubes on a fine grid of ``fine_shape`` (y, x) px.

    Parameters
    ----------
    cfg : run configuration (``chunks.y/x``: the store block; ``grid.coarse_factor``).
    fine_shape : (y, x) fine pixels of the target grid.
    """
    factor = cfg.grid.coarse_factor
    ny, nx = fine_shape
    fy = min(_round_up(max(FINE_READ_PX, cfg.chunks.y), cfg.chunks.y), _round_up(ny, cfg.chunks.y))
    fx = min(_round_up(max(FINE_READ_PX, cfg.chunks.x), cfg.chunks.x), _round_up(nx, cfg.chunks.x))
    coarse = {"time": COARSE_DAYS, "y": max(1, fy // factor), "x": max(1, fx // factor)}
    whole_coarse = {
        "time": CLEAR_COARSE_DAYS,
        "y": min(COARSE_CLEAR_PX, -(-ny // factor)),
        "x": min(COARSE_CLEAR_PX, -(-nx // factor)),
    }
    return CubeChunking(
        fine={"time": 1, "y": fy, "x": fx},
        coarse=coarse,
        clear_fine={"time": 1, "y": min(CLEAR_PX, ny), "x": min(CLEAR_PX, nx)},
        clear_coarse=whole_coarse,
    )
