"""STAC items and collections shaped like the real Planetary Computer records.

Key sets (item properties, asset keys, ``raster:bands`` fields) follow the recorded items
in ``tests/data/stac``; only the assets the demo world actually writes are listed.
Asset hrefs are absolute ``file://`` URLs: rustac rewrites plain paths to http URLs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shapely.geometry import box, mapping

from pipeline.synth.grid import MODIS_WKT2, Grid

STAC_VERSION = "1.0.0"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
LANDSAT_EXTENSIONS = [
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://landsat.usgs.gov/stac/landsat-extension/v1.1.1/schema.json",
    "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
    "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
]
MODIS_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v1.0.0/schema.json",
]
# (asset key, OLI band, centre um, FWHM um, title, band description)
LANDSAT_BANDS = (
    ("blue", "OLI_B2", 0.48, 0.06, "Blue Band", "Visible blue"),
    ("green", "OLI_B3", 0.56, 0.06, "Green Band", "Visible green"),
    ("red", "OLI_B4", 0.65, 0.04, "Red Band", "Visible red"),
    ("nir08", "OLI_B5", 0.87, 0.03, "Near Infrared Band 0.8", "Near infrared"),
    ("swir16", "OLI_B6", 1.61, 0.09, "Short-wave Infrared Band 1.6", "Short-wave infrared"),
    ("swir22", "OLI_B7", 2.2, 0.19, "Short-wave Infrared Band 2.2", "Short-wave infrared"),
)
# MODIS band n -> (common name, centre um, FWHM um) as in the real eo:bands.
MODIS_BANDS = {
    1: ("red", 0.645, 0.5),
    2: ("nir08", 0.8585, 0.35),
    3: ("blue", 0.469, 0.2),
    4: ("green", 0.555, 0.2),
    5: ("lwir12", 1.24, 0.2),
    6: ("swir16", 1.64, 0.24),
    7: ("swir22", 2.13, 0.5),
}
QA_BITFIELDS = [
    ("fill", 0, "Image or fill data", ("not_fill", "fill")),
    ("dilated_cloud", 1, "Dilated cloud", ("not_dilated", "dilated")),
    ("cirrus", 2, "Cirrus mask", ("not_cirrus", "cirrus")),
    ("cloud", 3, "Cloud mask", ("not_cloud", "cloud")),
    ("cloud_shadow", 4, "Cloud shadow mask", ("not_shadow", "shadow")),
    ("snow", 5, "Snow/Ice mask", ("not_snow", "snow")),
    ("clear", 6, "Cloud or dilated cloud bits are set", ("not_clear", "clear")),
    ("water", 7, "Water mask", ("not_water", "water")),
]


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _geometry(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    return mapping(box(*bbox))


def _proj(grid: Grid) -> dict[str, Any]:
    t = grid.transform
    return {
        "proj:shape": [grid.height, grid.width],
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
    }


def landsat_item(
    scene_id: str,
    when: dt.datetime,
    platform: str,
    grid: Grid,
    bbox: tuple[float, float, float, float],
    cloud_cover: float,
    hrefs: dict[str, str],
    wrs: tuple[int, int],
) -> dict[str, Any]:
    """A ``landsat-c2-l2`` item: properties and asset shapes of the real Planetary Computer items.

    ``hrefs`` maps asset key (blue..swir22, qa_pixel) to an absolute file:// URL.
    """
    mission = "8" if platform == "landsat-8" else "9"
    doy = when.timetuple().tm_yday
    properties = {
        "gsd": 30,
        "created": _iso(when + dt.timedelta(days=8)),
        "sci:doi": "10.5066/P9OGBGM6",
        "datetime": _iso(when),
        "platform": platform,
        "proj:epsg": grid.crs.to_epsg(),
        **_proj(grid),
        "description": "Landsat Collection 2 Level-2",
        "instruments": ["oli", "tirs"],
        "eo:cloud_cover": round(cloud_cover, 2),
        "view:off_nadir": 0,
        "landsat:wrs_row": f"{wrs[1]:03d}",
        "landsat:scene_id": f"LC{mission}{wrs[0]:03d}{wrs[1]:03d}{when.year}{doy:03d}LGN00",
        "landsat:wrs_path": f"{wrs[0]:03d}",
        "landsat:wrs_type": "2",
        "view:sun_azimuth": 150.0,
        "view:sun_elevation": 60.0,
        "landsat:correction": "L2SP",
        "landsat:cloud_cover_land": round(cloud_cover, 2),
        "landsat:collection_number": "02",
        "landsat:collection_category": "T1",
    }
    assets = {band[0]: _landsat_band_asset(hrefs[band[0]], *band) for band in LANDSAT_BANDS}
    assets["qa_pixel"] = _qa_pixel_asset(hrefs["qa_pixel"])
    return _feature(scene_id, "landsat-c2-l2", bbox, properties, assets, LANDSAT_EXTENSIONS)


def _landsat_band_asset(
    href: str, key: str, name: str, centre: float, fwhm: float, title: str, about: str
) -> dict[str, Any]:
    sr_name = name.replace("OLI_B", "SR_B")
    return {
        "href": href,
        "type": COG_TYPE,
        "title": title,
        "description": f"Collection 2 Level-2 {title} ({sr_name}) Surface Reflectance",
        "eo:bands": [
            {
                "name": name,
                "common_name": key,
                "center_wavelength": centre,
                "full_width_half_max": fwhm,
                "description": about,
            }
        ],
        "raster:bands": [
            {
                "scale": 2.75e-05,
                "nodata": 0,
                "offset": -0.2,
                "data_type": "uint16",
                "spatial_resolution": 30,
            }
        ],
        "roles": ["data", "reflectance"],
    }


def _qa_pixel_asset(href: str) -> dict[str, Any]:
    bitfields = [
        {
            "name": name,
            "length": 1,
            "offset": offset,
            "classes": [{"name": no, "value": 0}, {"name": yes, "value": 1}],
            "description": description,
        }
        for name, offset, description, (no, yes) in QA_BITFIELDS
    ]
    return {
        "href": href,
        "type": COG_TYPE,
        "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
        "title": "Pixel Quality Assessment Band",
        "description": "Collection 2 Level-1 Pixel Quality Assessment Band (QA_PIXEL)",
        "raster:bands": [
            {"unit": "bit index", "nodata": 1, "data_type": "uint16", "spatial_resolution": 30}
        ],
        "classification:bitfields": bitfields,
    }


def modis_43a4_item(
    item_id: str,
    day: dt.date,
    tile: tuple[int, int],
    grid: Grid,
    bbox: tuple[float, float, float, float],
    cloud_cover: float,
    hrefs: dict[str, str],
) -> dict[str, Any]:
    """A ``modis-43A4-061`` item: NBAR of ``day`` from the 16-day window day-8 .. day+7.

    ``hrefs`` maps ``Nadir_Reflectance_BandN`` and ``BRDF_Albedo_Band_Mandatory_Quality_BandN``
    (N = 1..7) to absolute file:// URLs.
    """
    midnight = dt.datetime.combine(day, dt.time())
    h, v = tile
    properties = {
        "start_datetime": (midnight - dt.timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_datetime": _iso(midnight + dt.timedelta(days=8) - dt.timedelta(microseconds=1)),
        "instruments": ["modis"],
        "platform": "terra,aqua",
        "created": (midnight + dt.timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated": _iso(midnight + dt.timedelta(days=8)),
        "modis:horizontal-tile": h,
        "modis:vertical-tile": v,
        "modis:tile-id": f"51{h:03d}{v:03d}",
        "proj:epsg": None,
        "proj:wkt2": MODIS_WKT2,
        "proj:geometry": mapping(box(*grid.bounds)),
        **_proj(grid),
        "eo:cloud_cover": round(cloud_cover),
        "datetime": midnight.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assets: dict[str, Any] = {}
    for n in MODIS_BANDS:
        qa_key = f"BRDF_Albedo_Band_Mandatory_Quality_Band{n}"
        assets[qa_key] = {
            "href": hrefs[qa_key],
            "type": COG_TYPE,
            "title": f"BRDF Albedo Mandatory Quality for Band {n}",
            "raster:bands": [{"data_type": "uint8", "spatial_resolution": 500}],
            "eo:bands": [{"name": qa_key}],
            "classification:classes": [
                {"value": 0, "description": "Processed, good quality (full BRDF inversions)"},
                {"value": 1, "description": "Processed, see other QA (magnitude BRDF inversions)"},
            ],
            "roles": ["data"],
        }
    for n, (common, centre, fwhm) in MODIS_BANDS.items():
        key = f"Nadir_Reflectance_Band{n}"
        assets[key] = {
            "href": hrefs[key],
            "type": COG_TYPE,
            "title": f"NBAR at local solar noon for Band {n}",
            "raster:bands": [{"data_type": "int16", "spatial_resolution": 500, "scale": 0.0001}],
            "eo:bands": [
                {
                    "name": key,
                    "common_name": common,
                    "center_wavelength": centre,
                    "full_width_half_max": fwhm,
                }
            ],
            "roles": ["data", "reflectance"],
        }
    return _feature(item_id, "modis-43A4-061", bbox, properties, assets, MODIS_EXTENSIONS)


def _feature(
    item_id: str,
    collection: str,
    bbox: tuple[float, float, float, float],
    properties: dict[str, Any],
    assets: dict[str, Any],
    extensions: list[str],
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": item_id,
        "collection": collection,
        "bbox": list(bbox),
        "geometry": _geometry(bbox),
        "properties": properties,
        "links": [],
        "assets": assets,
    }


def collection(
    collection_id: str,
    title: str,
    description: str,
    bbox: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
) -> dict[str, Any]:
    """A collection whose extent is the demo world and its season."""
    return {
        "type": "Collection",
        "id": collection_id,
        "stac_version": STAC_VERSION,
        "title": title,
        "description": description,
        "license": "proprietary",
        "keywords": ["synthetic", "demo"],
        "providers": [
            {"name": "stf-pipeline demo world", "roles": ["producer", "processor", "host"]}
        ],
        "extent": {
            "spatial": {"bbox": [list(bbox)]},
            "temporal": {
                "interval": [[f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T23:59:59Z"]]
            },
        },
        "links": [],
    }


def landsat_collection(
    bbox: tuple[float, float, float, float], start: dt.date, end: dt.date
) -> dict[str, Any]:
    """The ``landsat-c2-l2`` collection of the demo world."""
    return collection(
        "landsat-c2-l2",
        "Landsat Collection 2 Level-2 (synthetic demo world)",
        "Landsat 8/9 OLI-like surface reflectance simulated over a synthetic Po-valley farmland.",
        bbox,
        start,
        end,
    )


def modis_43a4_collection(
    bbox: tuple[float, float, float, float], start: dt.date, end: dt.date
) -> dict[str, Any]:
    """The ``modis-43A4-061`` collection of the demo world."""
    return collection(
        "modis-43A4-061",
        "MODIS Nadir BRDF-Adjusted Reflectance (NBAR) Daily 500 m (synthetic demo world)",
        "MCD43A4-like daily NBAR simulated from the demo world's truth on the sinusoidal grid.",
        bbox,
        start,
        end,
    )
