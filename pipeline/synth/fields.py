"""Field polygons of the landscape as GeoParquet, for downstream label use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import shape
from shapely.ops import unary_union

from pipeline.synth.grid import Grid
from pipeline.synth.landscape import Landscape
from pipeline.synth.phenology import CLASS_NAMES
from pipeline.synth.strips import strip_plan

#: A parcel absent from this many rows above a strip's end is complete: Voronoi cells are
#: convex and only the river (under 20 rows thick along a column) splits one in two.
_OPEN_ROWS = 32


def write_fields(path: Path, land: Landscape, grid: Grid) -> None:
    """Polygonise the parcel raster and write ``field_id, class_id, class_name, geometry`` (UTM).

    A strip of rows at a time: the pieces of a parcel cut by strip edges are merged, and
    parcels that are complete are written out (one Parquet row group per strip), so the
    polygons held at any time are those of about one strip.
    """
    pieces: dict[int, list] = {}
    writer: pq.ParquetWriter | None = None
    for r0, r1 in strip_plan(land.height, land.width):
        parcel = land.layers(r0, r1).parcel
        transform = grid.transform * Affine.translation(0, r0)
        for geom, value in rasterio.features.shapes(parcel, transform=transform):
            pieces.setdefault(int(value), []).append(shape(geom))
        still_open = set() if r1 >= land.height else set(np.unique(parcel[-_OPEN_ROWS:]).tolist())
        done = sorted(i for i in pieces if i not in still_open)
        if done:
            table = _table(done, [_merged(pieces.pop(i)) for i in done], land, grid)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    if writer is not None:
        writer.close()


def _table(ids: list[int], geoms: list, land: Landscape, grid: Grid) -> pa.Table:
    """One batch of fields as an Arrow table carrying the GeoParquet 1.0 metadata."""
    import geopandas as gpd

    idx = np.array(ids, dtype=np.int32)
    frame = gpd.GeoDataFrame(
        {
            "field_id": idx,
            "class_id": land.classes[idx].astype(np.int16),
            "class_name": [CLASS_NAMES[int(c)] for c in land.classes[idx]],
        },
        geometry=geoms,
        crs=grid.crs,
    )
    # to_arrow gives an Arrow PyCapsule wrapper; pa.table makes it a pyarrow.Table.
    table = pa.table(frame.to_arrow(index=False))
    # The metadata is the whole file's, not the batch's: the world's bounds cover every
    # field and an empty type list means "any" (GeoParquet 1.0).
    column = {"encoding": "WKB", "geometry_types": [], "crs": grid.crs.to_json_dict()}
    column["bbox"] = list(grid.bounds)
    geo = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return table.replace_schema_metadata({"geo": json.dumps(geo)})


def _merged(pieces: list) -> shapely.Geometry:
    """One parcel's pieces as one geometry, the same whatever strips cut it.

    The union keeps vertices where strip edges crossed straight boundaries: dropping
    collinear vertices and normalising the ring order gives one canonical form.
    """
    return shapely.normalize(unary_union(pieces).simplify(0))
