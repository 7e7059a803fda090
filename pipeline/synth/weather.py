"""The day-by-day sky over the world: one cloud field a day, seen by both sensors.

Real clouds persist from one day to the next (synoptic systems last days) and Landsat
and Terra-MODIS pass within ~30 minutes of each other, so both see the same clouds
(Melchiorre et al. 2020: R^2 = 0.83 between same-day Landsat 7 and MODIS-Terra cloud
fractions). Both facts are modelled with first-order autoregressive processes:

* the day's cloud fraction ``c_t`` is a Beta(mean = ``cloudiness``) quantile of a latent
  AR(1) Gaussian ``u_t`` (lag-one correlation ``COVER_RHO``), which gives the U-shaped
  scene cloud-cover distribution of real archives (many near-clear, many overcast days);
* the cloud field (where the clouds are) is an AR(1) mixture of a large-scale and a
  small-scale smooth Gaussian field (lag-one correlation ``FIELD_RHO``).

Each day's innovations are drawn from a generator keyed by the date, so a later season
end leaves every earlier day identical.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

from pipeline.synth.clouds import smooth_field
from pipeline.synth.noise import upsample_rows

#: Lag-one (day-to-day) correlation of the latent cloud-fraction process and of the field.
COVER_RHO, FIELD_RHO = 0.6, 0.7
#: Beta shape sum (a + b) of the daily cloud fraction: < 2 gives the U-shaped histogram.
BETA_CONCENTRATION = 0.9
#: Days drawn below this cloud fraction are clear-sky days (anticyclonic weather): real
#: archives hold many scenes at exactly 0 % cloud, which a continuous Beta never gives.
CLEAR_SKY = 0.05
#: The cloud field is drawn on a grid this many times coarser, then interpolated: clouds
#: have no 30 m detail and this keeps the per-day cost small on large worlds.
_FIELD_FACTOR = 4
#: Correlation lengths of the two field components in 30 m pixels (~1.5 km and ~250 m).
_LARGE_SIGMA_PX, _SMALL_SIGMA_PX = 48.0, 8.0
_WEATHER_STREAM = 4


@dataclass(frozen=True, eq=False)
class Sky:
    """The sky on one day: a cloud field kept coarse and the day's cloud fraction.

    ``coarse`` (y / 4, x / 4) float32 unit-variance field, interpolated to the world's
    ``shape`` (y, x) a strip at a time by :meth:`rows`; ``cover`` in [0, 1].
    """

    day: dt.date
    coarse: np.ndarray
    cover: float
    shape: tuple[int, int]

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0..r1`` of the 30 m cloud field: (r1 - r0, x) float32."""
        return upsample_rows(self.coarse, self.shape, np.arange(r0, r1), np.arange(self.shape[1]))

    @property
    def field(self) -> np.ndarray:
        """The whole (y, x) float32 30 m cloud field (small worlds, tests)."""
        return self.rows(0, self.shape[0])

    @cached_property
    def threshold(self) -> float:
        """Field value above which there is cloud: the (1 - cover) quantile of the 30 m field.

        Taken over one pixel in 4 x 4 (the interpolated field is smooth at that scale), so
        every strip of the day shares it without the whole field being built.
        """
        sample = upsample_rows(
            self.coarse,
            self.shape,
            np.arange(1, self.shape[0], _FIELD_FACTOR),
            np.arange(1, self.shape[1], _FIELD_FACTOR),
        )
        return float(np.quantile(sample, 1.0 - self.cover)) if self.cover > 0 else np.inf


def daily_skies(
    seed: int, days: list[dt.date], shape: tuple[int, int], cloudiness: float
) -> Iterator[Sky]:
    """The sky of each of ``days`` (consecutive, ascending) on a (y, x) world of ``shape``."""
    small = (max(shape[0] // _FIELD_FACTOR, 4), max(shape[1] // _FIELD_FACTOR, 4))
    latent, field = 0.0, None
    keep_u, keep_f = np.sqrt(1 - COVER_RHO**2), np.sqrt(1 - FIELD_RHO**2)
    for i, day in enumerate(days):
        rng = np.random.default_rng([seed, _WEATHER_STREAM, day.toordinal()])
        noise_u = float(rng.standard_normal())
        fresh = _fresh_field(small, rng)
        latent = noise_u if i == 0 else COVER_RHO * latent + keep_u * noise_u
        field = fresh if field is None else FIELD_RHO * field + keep_f * fresh
        yield Sky(day, field, cover_fraction(latent, cloudiness), shape)


def cover_fraction(latent: float, cloudiness: float) -> float:
    """Cloud fraction, Beta-distributed with mean ``cloudiness``, from an N(0, 1) ``latent``."""
    if cloudiness <= 0.0:
        return 0.0
    if cloudiness >= 1.0:
        return 1.0
    a, b = cloudiness * BETA_CONCENTRATION, (1.0 - cloudiness) * BETA_CONCENTRATION
    quantile = float(special.ndtr(latent))
    cover = float(np.clip(special.betaincinv(a, b, quantile), 0.0, 1.0))
    return 0.0 if cover < CLEAR_SKY else cover


def _fresh_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    large = smooth_field(shape, _LARGE_SIGMA_PX / _FIELD_FACTOR, rng)
    fine = smooth_field(shape, _SMALL_SIGMA_PX / _FIELD_FACTOR, rng)
    mix = 0.8 * large + 0.6 * fine
    return (mix / mix.std()).astype(np.float32)
