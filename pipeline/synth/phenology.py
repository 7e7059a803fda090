"""Land-cover classes and their seasonal NDVI: double-logistic curves with per-field jitter."""

from __future__ import annotations

import numpy as np

#: Class ids (index) and names of the land-cover / crop map.
CLASS_NAMES: tuple[str, ...] = (
    "water",
    "urban",
    "forest",
    "bare",
    "maize",
    "wheat",
    "rice",
    "soybean",
    "alfalfa",
)
WATER, URBAN, FOREST, BARE, MAIZE, WHEAT, RICE, SOYBEAN, ALFALFA = range(len(CLASS_NAMES))
CROPS: tuple[int, ...] = (MAIZE, WHEAT, RICE, SOYBEAN, ALFALFA)

# Typical Po-valley calendars (day of year): green-up, senescence midpoints, NDVI floor/peak.
# Constant covers (water, urban, bare) use sos > eos so the logistic term vanishes.
_CALENDAR = {
    WATER: (400, 0, 0.0, 0.0),
    URBAN: (400, 0, 0.15, 0.15),
    FOREST: (105, 295, 0.45, 0.86),
    BARE: (400, 0, 0.12, 0.12),
    MAIZE: (140, 245, 0.14, 0.87),
    WHEAT: (75, 168, 0.15, 0.82),
    RICE: (165, 258, 0.10, 0.83),
    SOYBEAN: (170, 262, 0.14, 0.84),
    ALFALFA: (90, 295, 0.20, 0.78),
}
#: Alfalfa is mown every ~35 days from late spring: NDVI drops and regrows over ~20 days.
_CUT_FIRST_DOY, _CUT_PERIOD, _CUT_REGROW = 130.0, 35.0, 20.0
#: Rice paddies are flooded from before sowing until the canopy closes.
_FLOOD_START_DOY, _FLOOD_END_DOY = 115.0, 180.0


#: Share of wheat fields followed by a second crop (soybean) after the June harvest, and of
#: maize sown late after a winter forage crop: common Po-valley rotations (ISTAT/CREA).
_DOUBLE_CROP_SHARE, _LATE_MAIZE_SHARE = 0.35, 0.25
#: Share of fields not irrigated or otherwise stressed, and their peak NDVI loss.
_STRESSED_SHARE, _STRESS_MAX = 0.3, 0.25


def field_parameters(classes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-field phenology, management and soil parameters, jittered around the class calendar.

    Within-class variability is what makes crop maps imperfect: sowing dates spread over
    ~3 weeks (sd 12 days), varieties differ in season length (sd 8 days), a third of the
    fields are stressed (lower peak), a share of the wheat carries a second crop after
    harvest and a share of the maize is sown a month late.

    Parameters
    ----------
    classes : (n_fields,) int class id of each field.
    rng : the world's generator (consumed in a fixed order, so results are seeded).

    Returns
    -------
    dict of (n_fields,) float32 arrays: ``sos``, ``eos`` (day of year), ``rise``, ``fall``
    (logistic widths, days), ``vmin``, ``vmax`` (NDVI), ``cut_phase`` (days), ``brightness``
    (soil scale, ~1), ``moisture`` (0 dry .. 1 wet), ``turbidity`` (water, 0..1),
    ``sos2``, ``eos2``, ``vmax2`` (second crop; ``vmax2`` 0 where none), ``veg_nir``,
    ``veg_red`` (canopy reflectance of the variety), ``gloss`` (all-band brightness, ~1).
    """
    n = classes.size
    cal = np.array([_CALENDAR[int(c)] for c in classes], dtype=np.float64).reshape(n, 4)
    sos = cal[:, 0] + rng.normal(0, 12, n)
    params = {
        "sos": sos,
        "eos": cal[:, 1] + (sos - cal[:, 0]) * 0.5 + rng.normal(0, 8, n),
        "rise": rng.uniform(5, 12, n),
        "fall": rng.uniform(5, 14, n),
        "vmin": cal[:, 2] + rng.normal(0, 0.03, n),
        "vmax": cal[:, 3] + rng.normal(0, 0.04, n),
        "cut_phase": rng.uniform(-12, 12, n),
        "brightness": rng.uniform(0.75, 1.3, n),
        "moisture": rng.beta(2, 4, n),
        "turbidity": rng.uniform(0, 1, n),
    }
    params |= _management(classes, params, rng)
    # Canopy brightness (leaf area, structure) scales red and NIR together: real scenes
    # show red and NIR positively correlated within a cover type (r 0.5-0.8).
    canopy = rng.uniform(0.75, 1.25, n)
    params["veg_nir"] = 0.27 * canopy * rng.uniform(0.9, 1.1, n)
    params["veg_red"] = 0.032 * canopy * rng.uniform(0.85, 1.15, n)
    params["gloss"] = rng.uniform(0.8, 1.2, n)
    constant = cal[:, 0] > cal[:, 1]
    params["vmax"][constant] = params["vmin"][constant]
    return {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}


def _management(
    classes: np.ndarray, p: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Stress, late sowing and second crops (mutates ``p``; returns the second-crop arrays)."""
    n = classes.size
    stressed = rng.uniform(size=n) < _STRESSED_SHARE
    p["vmax"] = p["vmax"] - np.where(stressed, rng.uniform(0.05, _STRESS_MAX, n), 0.0)
    late = (classes == MAIZE) & (rng.uniform(size=n) < _LATE_MAIZE_SHARE)
    p["sos"] = p["sos"] + np.where(late, 30.0, 0.0)
    p["eos"] = p["eos"] + np.where(late, 20.0, 0.0)
    double = (classes == WHEAT) & (rng.uniform(size=n) < _DOUBLE_CROP_SHARE)
    sos2 = p["eos"] + rng.uniform(15, 30, n)
    return {
        "sos2": sos2,
        "eos2": sos2 + rng.uniform(70, 90, n),
        "vmax2": np.where(double, rng.uniform(0.55, 0.82, n), 0.0),
    }


def ndvi(doy: float, classes: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Field NDVI on day of year ``doy``: (n_fields,) float32.

    Double logistic ``vmin + (vmax - vmin) * (s(doy - sos, rise) - s(doy - eos, fall))``;
    alfalfa additionally loses 60 % of its green amplitude at each cut and regrows linearly;
    a second crop (``vmax2`` > 0) adds its own hump after the first harvest.
    """
    up = _sigmoid((doy - p["sos"]) / p["rise"])
    down = _sigmoid((doy - p["eos"]) / p["fall"])
    amp = np.clip(up - down, 0.0, 1.0)
    since_cut = np.mod(doy - _CUT_FIRST_DOY - p["cut_phase"], _CUT_PERIOD)
    mown = (classes == ALFALFA) & (doy >= _CUT_FIRST_DOY + p["cut_phase"])
    regrowth = np.where(mown, 0.4 + 0.6 * np.clip(since_cut / _CUT_REGROW, 0.0, 1.0), 1.0)
    first = p["vmin"] + (p["vmax"] - p["vmin"]) * amp * regrowth
    if "vmax2" not in p:
        return first.astype(np.float32)
    up2 = _sigmoid((doy - p["sos2"]) / p["rise"])
    amp2 = np.clip(up2 - _sigmoid((doy - p["eos2"]) / p["fall"]), 0.0, 1.0)
    second = p["vmin"] + np.maximum(p["vmax2"] - p["vmin"], 0.0) * amp2
    return np.maximum(first, second).astype(np.float32)


def flooded(doy: float, classes: np.ndarray) -> np.ndarray:
    """(n_fields,) bool: rice paddies under standing water on ``doy``."""
    return (classes == RICE) & (doy >= _FLOOD_START_DOY) & (doy < _FLOOD_END_DOY)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
