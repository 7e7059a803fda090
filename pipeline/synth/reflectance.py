"""Daily 30 m surface reflectance from the landscape by linear endmember mixing.

Each pixel is ``fc * vegetation + (1 - fc) * background`` with the background the
field's soil (brightness and moisture per field), urban material, or water (flooded rice
paddies mix soil and water). The vegetation fraction ``fc`` is solved from the field's
NDVI for that day with the field's own canopy spectrum (variety), so NDVI computed from
the mixed spectrum equals the phenology curve; an all-band brightness (field gloss x
``shade`` texture) keeps NDVI, and a 0.7 px blur mixes pixels across field edges.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from scipy import ndimage

from pipeline.synth.landscape import Landscape
from pipeline.synth.phenology import URBAN, WATER, flooded, ndvi

# Endmember spectra, surface reflectance for (blue, green, red, nir, swir1, swir2),
# typical of USGS/ASTER library spectra resampled to OLI bands.
_VEGETATION = np.array([0.030, 0.075, 0.035, 0.36, 0.19, 0.085], dtype=np.float32)
_SOIL = np.array([0.075, 0.105, 0.135, 0.21, 0.30, 0.25], dtype=np.float32)
_URBAN = np.array([0.095, 0.115, 0.130, 0.19, 0.23, 0.21], dtype=np.float32)
_CLEAR_WATER = np.array([0.045, 0.055, 0.030, 0.015, 0.008, 0.005], dtype=np.float32)
_TURBID_WATER = np.array([0.070, 0.095, 0.085, 0.045, 0.015, 0.008], dtype=np.float32)
#: Wet soil darkens most in the SWIR (water absorption), least in the visible.
_MOISTURE_DARKENING = np.array([0.25, 0.25, 0.25, 0.30, 0.45, 0.50], dtype=np.float32)
_RED, _NIR = 2, 3


#: Sigma (30 m px) of the mixing across field edges: the sensor PSF and real boundary
#: strips (headlands, ditches) make edges ~2 px wide; real edge index ~0.55 (stats.edge_index).
EDGE_SIGMA_PX = 0.7


def truth_day(land: Landscape, date: dt.date) -> np.ndarray:
    """Noise-free surface reflectance of the whole world on ``date``.

    Returns
    -------
    (band, y, x) float32 reflectance in [0, 1] for bands (blue, green, red, nir, swir1, swir2).
    """
    doy = float(date.timetuple().tm_yday)
    background = _background(land, doy)
    vegetation = _vegetation(land)
    target = ndvi(doy, land.classes, land.params)
    fc_field = _cover_for_ndvi(target, background, vegetation)
    fc = np.clip(fc_field[land.parcel] * land.texture, 0.0, 1.0)
    out = np.empty((len(_SOIL), *land.parcel.shape), dtype=np.float32)
    # Band by band keeps the temporaries at one (y, x) array (large worlds).
    for b in range(len(_SOIL)):
        pixel = fc * vegetation[:, b][land.parcel] + (1.0 - fc) * background[:, b][land.parcel]
        # Within-field soil texture is visible where the canopy is open.
        pixel *= 1.0 + (land.texture - 1.0) * (1.0 - fc)
        # All-band brightness (field gloss x illumination/structure texture): keeps NDVI,
        # makes red and NIR vary together across the scene as in real images.
        pixel *= land.params["gloss"][land.parcel] * land.shade
        out[b] = ndimage.gaussian_filter(pixel, EDGE_SIGMA_PX, mode="nearest")
    return np.clip(out, 0.0, 1.0, out=out)


def _vegetation(land: Landscape) -> np.ndarray:
    """(n_fields, band) float32 full-canopy spectrum of each field's variety."""
    veg = np.repeat(_VEGETATION[None, :], land.classes.size, axis=0)
    if "veg_nir" in land.params:
        veg[:, _NIR] = land.params["veg_nir"]
        veg[:, _RED] = land.params["veg_red"]
    return veg


def _background(land: Landscape, doy: float) -> np.ndarray:
    """(n_fields, band) float32 non-vegetated spectrum of each field on ``doy``."""
    p = land.params
    dry = _SOIL[None, :] * p["brightness"][:, None]
    soil = dry * (1.0 - _MOISTURE_DARKENING[None, :] * p["moisture"][:, None])
    water = _CLEAR_WATER + p["turbidity"][:, None] * (_TURBID_WATER - _CLEAR_WATER)
    bg = soil
    bg = np.where((land.classes == URBAN)[:, None], _URBAN[None, :] * p["brightness"][:, None], bg)
    paddy = flooded(doy, land.classes)[:, None]
    bg = np.where(paddy, 0.3 * soil + 0.7 * water, bg)
    bg = np.where((land.classes == WATER)[:, None], water, bg)
    return bg.astype(np.float32)


def _cover_for_ndvi(
    target: np.ndarray, background: np.ndarray, vegetation: np.ndarray
) -> np.ndarray:
    """Vegetation fraction giving NDVI ``target`` over ``background``: (n_fields,) in [0, 1].

    With nir = b_n + fc * (v_n - b_n) and red likewise, NDVI = (a + fc b) / (c + fc d)
    is solved for fc in closed form.
    """
    bn, br = background[:, _NIR], background[:, _RED]
    vn, vr = vegetation[:, _NIR], vegetation[:, _RED]
    a, c = bn - br, bn + br
    b, d = (vn - vr) - a, (vn + vr) - c
    with np.errstate(divide="ignore", invalid="ignore"):
        fc = (target * c - a) / (b - target * d)
    return np.clip(np.nan_to_num(fc, nan=0.0), 0.0, 1.0).astype(np.float32)
