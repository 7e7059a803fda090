"""Field polygons of the landscape as GeoParquet, for downstream label use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio.features
from affine import Affine
from shapely.geometry import shape
from shapely.ops import unary_union

from pipeline.synth.grid import Grid
from pipeline.synth.landscape import Landscape
from pipeline.synth.phenology import CLASS_NAMES
from pipeline.synth.strips import strip_plan


def write_fields(path: Path, land: Landscape, grid: Grid) -> None:
    """Polygonise the parcel raster and write ``field_id, class_id, class_name, geometry`` (UTM).

    A strip of rows at a time; the pieces of a parcel cut by strip edges are merged.
    """
    import geopandas as gpd

    pieces: dict[int, list] = {}
    for r0, r1 in strip_plan(land.height, land.width):
        parcel = land.layers(r0, r1).parcel
        transform = grid.transform * Affine.translation(0, r0)
        for geom, value in rasterio.features.shapes(parcel, transform=transform):
            pieces.setdefault(int(value), []).append(shape(geom))
    ids = np.array(sorted(pieces), dtype=np.int32)
    frame = gpd.GeoDataFrame(
        {
            "field_id": ids,
            "class_id": land.classes[ids].astype(np.int16),
            "class_name": [CLASS_NAMES[int(c)] for c in land.classes[ids]],
        },
        geometry=[unary_union(pieces[int(i)]) for i in ids],
        crs=grid.crs,
    )
    frame.to_parquet(path)
