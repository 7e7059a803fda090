"""Evaluation manifests: YAML naming dated fine/coarse rasters, parsed and validated once.

Format (paths relative to the manifest file)::

    name: estarfm-2001
    bands: [green, red, nir]          # any names; one band (e.g. [ndvi]) is fine
    fine:   {scale: 0.0001}           # optional offset, nodata
    coarse: {scale: 0.0001}
    ratio: 16                         # coarse / fine pixel size
    dates:
      - {date: 2001-05-24, fine: tm0524, coarse: modis0524}
      - {date: 2001-07-11, fine: tm0711, coarse: modis0711,
         mask: cloud0711, invalid: [1, 2]}   # optional: pixels excluded
    predict: 2001-07-11

A coarse raster may be on the fine grid or ``ratio`` times smaller (then it is
block-replicated onto the fine grid). Every error is an
:class:`~pipeline.errors.InputError` of one line naming the manifest field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.models.base import Scene


@dataclass(frozen=True)
class Scaling:
    """Digital number -> reflectance: ``dn * scale + offset``; ``nodata`` DN -> NaN."""

    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None


@dataclass(frozen=True)
class DateEntry:
    """One date: its rasters and optional exclusion mask (``invalid`` values)."""

    date: dt.date
    coarse: Path
    fine: Path | None = None
    mask: Path | None = None
    invalid: tuple[float, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """A validated manifest (files exist; raster contents checked by :func:`load_dataset`)."""

    path: Path
    name: str
    bands: tuple[str, ...]
    fine: Scaling
    coarse: Scaling
    ratio: float
    dates: tuple[DateEntry, ...]
    predict: dt.date


@dataclass(frozen=True)
class Dataset:
    """Rasters of a manifest on the fine grid.

    Attributes
    ----------
    manifest : the manifest.
    scenes : one :class:`~pipeline.models.base.Scene` per date, (band, y, x) float32
        reflectance, NaN where nodata or masked out.
    masks : date -> (y, x) bool, True where a pixel may be used and scored.
    """

    manifest: Manifest
    scenes: tuple[Scene, ...]
    masks: dict[dt.date, np.ndarray]


def _fail(path: Path, field: str, message: str) -> InputError:
    return InputError(f"manifest {path}: {field}: {message}")


def _file(path: Path, field: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise _fail(path, field, "expected a file name")
    found = (path.parent / value).resolve()
    if not found.is_file():
        raise _fail(path, field, f"file {found} not found (paths are relative to the manifest)")
    return found


def _date(path: Path, field: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _fail(path, field, f"{value!r} is not a date; write YYYY-MM-DD") from None


def _scaling(path: Path, field: str, value: Any) -> Scaling:
    if value is None:
        return Scaling()
    if not isinstance(value, dict) or set(value) - {"scale", "offset", "nodata"}:
        raise _fail(path, field, "expected {scale: S, offset: O, nodata: N} (all optional)")
    try:
        return Scaling(**{k: None if v is None else float(v) for k, v in value.items()})
    except (TypeError, ValueError):
        raise _fail(path, field, "scale, offset and nodata must be numbers") from None


def _entry(path: Path, i: int, raw: Any) -> DateEntry:
    field = f"dates[{i}]"
    if not isinstance(raw, dict) or "date" not in raw:
        raise _fail(path, field, "expected {date: YYYY-MM-DD, fine: FILE, coarse: FILE}")
    unknown = set(raw) - {"date", "fine", "coarse", "mask", "invalid"}
    if unknown:
        raise _fail(path, f"{field}.{sorted(unknown)[0]}", "unknown key")
    date = _date(path, f"{field}.date", raw["date"])
    if raw.get("coarse") is None:
        raise _fail(
            path, f"{field}.coarse", f"date {date} has no coarse image; every date needs one"
        )
    invalid = raw.get("invalid", [])
    if not isinstance(invalid, list) or not all(isinstance(v, int | float) for v in invalid):
        raise _fail(path, f"{field}.invalid", "expected a list of mask values, e.g. [1, 2]")
    if raw.get("mask") is not None and not invalid:
        raise _fail(path, f"{field}.invalid", "a mask needs the list of invalid values")
    return DateEntry(
        date=date,
        coarse=_file(path, f"{field}.coarse", raw["coarse"]),
        fine=None if raw.get("fine") is None else _file(path, f"{field}.fine", raw["fine"]),
        mask=None if raw.get("mask") is None else _file(path, f"{field}.mask", raw["mask"]),
        invalid=tuple(float(v) for v in invalid),
    )


def load_manifest(path: str | Path) -> Manifest:
    """Parse and validate a manifest file (structure, dates, files exist)."""
    import yaml

    path = Path(path).resolve()
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"manifest {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "(top level)", "expected a mapping with name, bands, dates, predict")
    for key in ("bands", "dates", "predict"):
        if key not in raw:
            raise _fail(path, key, "missing")
    bands = raw["bands"]
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise _fail(path, "bands", "expected a list of band names, e.g. [green, red, nir]")
    if not isinstance(raw["dates"], list) or not raw["dates"]:
        raise _fail(path, "dates", "expected a list of {date, fine, coarse}")
    dates = tuple(_entry(path, i, e) for i, e in enumerate(raw["dates"]))
    if len({d.date for d in dates}) != len(dates):
        raise _fail(path, "dates", "a date appears twice")
    predict = _date(path, "predict", raw["predict"])
    if predict not in {d.date for d in dates}:
        raise _fail(path, "predict", f"{predict} is not one of the dates (it needs a coarse image)")
    try:
        ratio = float(raw.get("ratio", 16))
    except (TypeError, ValueError):
        ratio = -1.0
    if ratio <= 0:
        raise _fail(path, "ratio", "expected a positive number (coarse / fine pixel size)")
    return Manifest(
        path=path,
        name=str(raw.get("name", path.stem)),
        bands=tuple(bands),
        fine=_scaling(path, "fine", raw.get("fine")),
        coarse=_scaling(path, "coarse", raw.get("coarse")),
        ratio=ratio,
        dates=tuple(sorted(dates, key=lambda d: d.date)),
        predict=predict,
    )
