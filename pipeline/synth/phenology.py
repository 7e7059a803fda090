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


def field_parameters(classes: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-field phenology and soil parameters, jittered around the class calendar.

    Parameters
    ----------
    classes : (n_fields,) int class id of each field.
    rng : the world's generator (consumed in a fixed order, so results are seeded).

    Returns
    -------
    dict of (n_fields,) float32 arrays: ``sos``, ``eos`` (day of year), ``rise``, ``fall``
    (logistic widths, days), ``vmin``, ``vmax`` (NDVI), ``cut_phase`` (days), ``brightness``
    (soil scale, ~1), ``moisture`` (0 dry .. 1 wet), ``turbidity`` (water, 0..1).
    """
    n = classes.size
    cal = np.array([_CALENDAR[int(c)] for c in classes], dtype=np.float64).reshape(n, 4)
    params = {
        "sos": cal[:, 0] + rng.normal(0, 7, n),
        "eos": cal[:, 1] + rng.normal(0, 7, n),
        "rise": rng.uniform(5, 9, n),
        "fall": rng.uniform(5, 10, n),
        "vmin": cal[:, 2] + rng.normal(0, 0.02, n),
        "vmax": cal[:, 3] - np.abs(rng.normal(0, 0.05, n)),
        "cut_phase": rng.uniform(-6, 6, n),
        "brightness": rng.uniform(0.75, 1.3, n),
        "moisture": rng.beta(2, 4, n),
        "turbidity": rng.uniform(0, 1, n),
    }
    constant = cal[:, 0] > cal[:, 1]
    params["vmax"][constant] = params["vmin"][constant]
    return {k: v.astype(np.float32) for k, v in params.items()}


def ndvi(doy: float, classes: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Field NDVI on day of year ``doy``: (n_fields,) float32.

    Double logistic ``vmin + (vmax - vmin) * (s(doy - sos, rise) - s(doy - eos, fall))``;
    alfalfa additionally loses 60 % of its green amplitude at each cut and regrows linearly.
    """
    up = _sigmoid((doy - p["sos"]) / p["rise"])
    down = _sigmoid((doy - p["eos"]) / p["fall"])
    amp = np.clip(up - down, 0.0, 1.0)
    since_cut = np.mod(doy - _CUT_FIRST_DOY - p["cut_phase"], _CUT_PERIOD)
    mown = (classes == ALFALFA) & (doy >= _CUT_FIRST_DOY + p["cut_phase"])
    regrowth = np.where(mown, 0.4 + 0.6 * np.clip(since_cut / _CUT_REGROW, 0.0, 1.0), 1.0)
    return (p["vmin"] + (p["vmax"] - p["vmin"]) * amp * regrowth).astype(np.float32)


def flooded(doy: float, classes: np.ndarray) -> np.ndarray:
    """(n_fields,) bool: rice paddies under standing water on ``doy``."""
    return (classes == RICE) & (doy >= _FLOOD_START_DOY) & (doy < _FLOOD_END_DOY)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
