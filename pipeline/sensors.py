"""Sensor definitions in one place: which asset holds which band, how to scale it, what is invalid.

Bands are addressed by the pipeline's canonical names (:data:`pipeline.config.BANDS`):
``blue, green, red, nir, swir1, swir2``. Landsat assets are keyed by common name
in Collection 2 STAC (``nir08``, ``swir16``, ``swir22``), so Landsat 7's band
numbering never matters. MODIS pairs with Landsat as red↔b1, nir↔b2, blue↔b3,
green↔b4, swir1↔b6, swir2↔b7.

Reflectance = DN × scale + offset. MODIS STAC items declare no nodata: the fill
values below come from the MODIS product user guides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

# Landsat Collection 2 QA_PIXEL bits (classification:bitfields in the real items).
QA_FILL = 1 << 0
QA_DILATED_CLOUD = 1 << 1
QA_CIRRUS = 1 << 2
QA_CLOUD = 1 << 3
QA_CLOUD_SHADOW = 1 << 4
QA_SNOW = 1 << 5
QA_CLEAR = 1 << 6
QA_WATER = 1 << 7
#: QA_PIXEL bits that make a Landsat pixel unusable for fusion.
LANDSAT_INVALID_BITS = QA_FILL | QA_DILATED_CLOUD | QA_CIRRUS | QA_CLOUD | QA_CLOUD_SHADOW | QA_SNOW


@dataclass(frozen=True)
class Sensor:
    """How to read one STAC collection.

    Attributes
    ----------
    collection : STAC collection id.
    role : ``"fine"`` (Landsat) or ``"coarse"`` (MODIS).
    assets : canonical band name -> asset key.
    qa_asset : asset holding the quality band (None if the product has none we use).
    scale, offset : DN -> reflectance, unitless.
    nodata : the DN that means "no data" (set here when the STAC item does not declare it).
    qa_nodata : the fill value of the QA asset(s) (flagged invalid by :meth:`invalid_from_qa`).
    dtype : on-disk data type of the reflectance assets.
    resolution : native pixel size in metres.
    daily : True when one scene per day is expected (MCD43A4), False for composites.
    """

    collection: str
    role: Literal["fine", "coarse"]
    assets: Mapping[str, str]
    qa_asset: str | None
    scale: float
    offset: float
    nodata: int
    dtype: str
    resolution: float
    daily: bool = False
    qa_nodata: int = 0
    qa_per_band: Mapping[str, str] = field(default_factory=dict)

    def asset_for(self, band: str) -> str:
        """The asset key holding canonical ``band``; raises KeyError naming the collection."""
        try:
            return self.assets[band]
        except KeyError:
            raise KeyError(f"collection {self.collection} has no band {band!r}") from None

    def to_reflectance(self, dn: np.ndarray) -> np.ndarray:
        """DN -> float32 reflectance, NaN where ``dn == nodata``."""
        out = dn.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        out[dn == self.nodata] = np.nan
        return out

    def invalid_from_qa(self, qa: np.ndarray) -> np.ndarray:
        """Boolean mask (True = unusable) from this sensor's QA band."""
        if self.role == "fine":
            return (qa.astype(np.uint16) & LANDSAT_INVALID_BITS) != 0
        if self.collection == "modis-43A4-061":
            # BRDF_Albedo_Band_Mandatory_Quality: 0 full inversion, 1 magnitude inversion, 255 fill.
            return qa.astype(np.uint8) > 1
        # MOD09 state flags: bits 0-1 cloud state (00 clear), bit 2 cloud shadow.
        state = qa.astype(np.uint16)
        return ((state & 0b11) != 0) | ((state & 0b100) != 0)


_LANDSAT_ASSETS = {
    "blue": "blue",
    "green": "green",
    "red": "red",
    "nir": "nir08",
    "swir1": "swir16",
    "swir2": "swir22",
}
_MODIS_BAND_NUMBER = {"red": 1, "nir": 2, "blue": 3, "green": 4, "swir1": 6, "swir2": 7}

LANDSAT_C2_L2 = Sensor(
    collection="landsat-c2-l2",
    role="fine",
    assets=_LANDSAT_ASSETS,
    qa_asset="qa_pixel",
    scale=2.75e-05,
    offset=-0.2,
    nodata=0,
    dtype="uint16",
    resolution=30.0,
    qa_nodata=1,  # QA_FILL bit, as declared in raster:bands of the real items
)

MODIS_43A4 = Sensor(
    collection="modis-43A4-061",
    role="coarse",
    assets={b: f"Nadir_Reflectance_Band{n}" for b, n in _MODIS_BAND_NUMBER.items()},
    qa_asset=None,
    qa_per_band={
        b: f"BRDF_Albedo_Band_Mandatory_Quality_Band{n}" for b, n in _MODIS_BAND_NUMBER.items()
    },
    scale=1e-4,
    offset=0.0,
    nodata=32767,
    dtype="int16",
    resolution=463.3127165275,
    daily=True,
    qa_nodata=255,
)

MODIS_09A1 = Sensor(
    collection="modis-09A1-061",
    role="coarse",
    assets={b: f"sur_refl_b{n:02d}" for b, n in _MODIS_BAND_NUMBER.items()},
    qa_asset="sur_refl_state_500m",
    scale=1e-4,
    offset=0.0,
    nodata=-28672,
    dtype="int16",
    resolution=463.3127165275,
    qa_nodata=65535,
)

MODIS_09Q1 = Sensor(
    collection="modis-09Q1-061",
    role="coarse",
    assets={"red": "sur_refl_b01", "nir": "sur_refl_b02"},
    qa_asset="sur_refl_state_250m",
    scale=1e-4,
    offset=0.0,
    nodata=-28672,
    dtype="int16",
    resolution=231.65635826375,
    qa_nodata=65535,
)

FINE_SENSORS: dict[str, Sensor] = {LANDSAT_C2_L2.collection: LANDSAT_C2_L2}
COARSE_SENSORS: dict[str, Sensor] = {s.collection: s for s in (MODIS_43A4, MODIS_09A1, MODIS_09Q1)}


def sensor(collection: str) -> Sensor:
    """The :class:`Sensor` for a collection id; KeyError lists the known ones."""
    known = {**FINE_SENSORS, **COARSE_SENSORS}
    try:
        return known[collection]
    except KeyError:
        raise KeyError(f"unknown collection {collection!r}; known: {sorted(known)}") from None
