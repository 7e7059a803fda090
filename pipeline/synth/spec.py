"""The frozen description of a demo world: where, how large, which season, which seed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

#: Bump when the generator changes in a way that changes the bytes it writes.
GENERATOR_VERSION = 3

#: Pixels per side of one coarse (480 m) cell: world sizes must be a multiple of it.
COARSE_FACTOR = 16


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines a demo world; equal specs build byte-identical worlds.

    Attributes
    ----------
    seed : seed of every random draw (landscape, phenology, clouds, noise).
    width, height : world size in 30 m pixels; multiples of 16 so the 480 m grid aligns.
    lon, lat : centre of the world in degrees (default: Po valley farmland near Mantova).
    epsg : UTM CRS of the 30 m world grid.
    start, end : inclusive season of daily truth and scenes. A later ``end`` with the
        same seed adds newer scenes and leaves older ones byte-identical.
    landsat_interval_days : revisit of the combined Landsat 8/9 constellation.
    cloudiness : mean cloud fraction of a day in [0, 1] (0 = always clear); the default
        0.4 is the Po valley's April-October regime (``pipeline/synth/CALIBRATION.md``).
    modis_shift_m : (east, north) metres by which the MODIS-like scenes are misregistered
        against the Landsat-like ones; default the offset measured on the real
        estarfm-2001 set (8 rows x 16 columns of 30 m, about 540 m).
    weather_seed : seed of the clouds alone (default: ``seed``), so a world can keep its
        landscape and draw another season of weather.
    """

    seed: int = 42
    width: int = 512  # 15.4 km: the multiple of 16 nearest to 500 px
    height: int = 512
    lon: float = 10.0
    lat: float = 45.1
    epsg: int = 32632
    start: dt.date = dt.date(2024, 4, 1)
    end: dt.date = dt.date(2024, 10, 31)
    landsat_interval_days: int = 8
    cloudiness: float = 0.4
    modis_shift_m: tuple[float, float] = (-480.0, 240.0)
    weather_seed: int | None = None

    def __post_init__(self) -> None:
        if self.width % COARSE_FACTOR or self.height % COARSE_FACTOR:
            raise ValueError(
                f"world size {self.width}x{self.height} px must be a multiple of {COARSE_FACTOR}"
            )
        if self.end < self.start:
            raise ValueError(f"season end {self.end} is before start {self.start}")
        if not 0.0 <= self.cloudiness <= 1.0:
            raise ValueError(f"cloudiness must lie in [0, 1], got {self.cloudiness}")
        if min(self.width, self.height) < 2 * COARSE_FACTOR:
            raise ValueError(f"world size {self.width}x{self.height} px must be at least 32 px")

    @classmethod
    def tiny(cls, **changes: Any) -> WorldSpec:
        """A 96 x 96 px (2.9 km) world over five weeks of early summer: builds in seconds."""
        base = {
            "width": 96,
            "height": 96,
            "start": dt.date(2024, 6, 1),
            "end": dt.date(2024, 7, 5),
            # Early summer is the Po valley's sunniest time. This weather gives the scenes
            # the tests rely on: 06-08, 06-16 and 07-02 clear, 06-24 30 % cloud.
            "cloudiness": 0.3,
            "weather_seed": 54,
        }
        return cls(**{**base, **changes})

    @property
    def sky_seed(self) -> int:
        """The seed of the weather: ``weather_seed`` or else ``seed``."""
        return self.seed if self.weather_seed is None else self.weather_seed

    def days(self) -> list[dt.date]:
        """Every day of the season, inclusive."""
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates as ISO strings), stored in the world marker."""
        out = dataclasses.asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["modis_shift_m"] = list(self.modis_shift_m)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorldSpec:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["start"], data["end"] = (
            dt.date.fromisoformat(data["start"]),
            dt.date.fromisoformat(data["end"]),
        )
        data["modis_shift_m"] = tuple(data.get("modis_shift_m", (0.0, 0.0)))
        return cls(**data)
