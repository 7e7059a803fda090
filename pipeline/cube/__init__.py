"""Analysis-ready cubes: fine (Landsat) and coarse (MODIS) reflectance on one aligned grid.

``load_cubes(cfg, search_result)`` -> :class:`Cubes` (masked float32 cubes, clear
fractions, reference :class:`Pair` s); grids from :func:`target_grids`.
"""

from pipeline.cube.cubes import Cubes, load_cubes
from pipeline.cube.grid import target_grids
from pipeline.cube.pairs import Pair, find_pairs

__all__ = ["Cubes", "Pair", "find_pairs", "load_cubes", "target_grids"]
