"""Field polygons of the landscape as GeoParquet, for downstream label use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio.features
from shapely.geometry import shape
from shapely.ops import unary_union

from pipeline.synth.grid import Grid
from pipeline.synth.landscape import Landscape
from pipeline.synth.phenology import CLASS_NAMES


def write_fields(path: Path, land: Landscape, grid: Grid) -> None:
    """Polygonise the parcel raster and write ``field_id, class_id, class_name, geometry`` (UTM)."""
    import geopandas as gpd

    pieces: dict[int, list] = {}
    for geom, value in rasterio.features.shapes(land.parcel, transform=grid.transform):
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
