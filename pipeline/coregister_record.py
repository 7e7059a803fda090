"""Co-registration records: the shift estimate, the decision taken on it, as JSON-ready data.

:class:`ShiftEstimate` is what :mod:`pipeline.coregister` measures;
:func:`decide` turns it into a :class:`Coregistration` under the configured mode
(``grid.coregister`` of a run, ``--coregister`` of ``stf evaluate``), which the
cubes, ``cubes.json``, the summaries and the store's provenance carry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from pipeline.errors import InputError

#: ``auto``: estimate, apply when reliable, warn otherwise; ``require``: refuse when
#: unreliable; ``off``: leave the coarse images as they are.
Mode = Literal["auto", "require", "off"]
MODES: tuple[str, ...] = ("auto", "require", "off")

#: Shifts shorter than this (fine px) are recorded but not applied: under 1/32
#: of a 16-px coarse cell the resampling would cost more than it fixes.
MIN_APPLIED = 0.5


@dataclass(frozen=True)
class PairShift:
    """One pair's own estimate: ``label`` (its date), ``shift`` (dy, dx) fine px, ``peak`` r."""

    label: str
    shift: tuple[float, float]
    peak: float
    cells: int


@dataclass(frozen=True)
class ShiftEstimate:
    """The combined estimate over the pairs.

    Attributes
    ----------
    shift : (dy, dx) fine pixels: the coarse image shows at p + shift what the fine
        image shows at p.
    peak : mean Pearson r of aggregated fine and coarse cells at the integer peak
        (None when nothing could be correlated).
    at_zero : the same correlation without any shift (what co-registration gains; None
        when too few cells are clear at shift 0).
    cells : clear coarse cells used, summed over pairs.
    spread : largest distance (fine px) of a pair's estimate from ``shift``.
    pairs : each pair's own estimate.
    reliable : whether ``shift`` may be applied; ``reason`` says why not.
    """

    shift: tuple[float, float]
    peak: float | None
    at_zero: float | None
    cells: int
    spread: float
    pairs: tuple[PairShift, ...]
    reliable: bool
    reason: str | None = None


@dataclass(frozen=True)
class Coregistration:
    """What a run or evaluation did about co-registration (recorded in provenance/summaries).

    Attributes
    ----------
    mode : ``auto``, ``require`` or ``off``.
    applied : (dy, dx) fine px actually undone ((0, 0) when nothing was applied).
    factor : fine pixels per coarse pixel.
    estimate : the estimate, None with ``mode="off"``.
    warning : one line when the estimate was unreliable and nothing was applied.
    """

    mode: str
    applied: tuple[float, float] = (0.0, 0.0)
    factor: int = 16
    estimate: ShiftEstimate | None = None
    warning: str | None = None

    @property
    def is_applied(self) -> bool:
        """True when the coarse images were resampled."""
        return self.applied != (0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists through ``json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Coregistration | None:
        """Inverse of :meth:`to_dict` (None stays None)."""
        if data is None:
            return None
        est = data.get("estimate")
        if est is not None:
            pairs = tuple(
                PairShift(p["label"], tuple(p["shift"]), p["peak"], p["cells"])
                for p in est["pairs"]
            )
            est = ShiftEstimate(**{**est, "shift": tuple(est["shift"]), "pairs": pairs})
        return cls(
            mode=data["mode"],
            applied=tuple(data["applied"]),
            factor=int(data["factor"]),
            estimate=est,
            warning=data.get("warning"),
        )

    def describe(self, resolution_m: float | None = None) -> str:
        """One line for summaries.

        E.g. ``coarse shift (-8.08, -15.92) fine px = 535 m applied (r 0.77 -> 0.87, 3 pair(s))``.
        """
        if self.estimate is None:
            return "co-registration off"
        est = self.estimate
        if est.peak is None:
            return f"coarse shift not estimated ({est.reason})"
        dy, dx = est.shift
        zero = "?" if est.at_zero is None else f"{est.at_zero:.2f}"
        metres = f" = {np.hypot(dy, dx) * resolution_m:.0f} m" if resolution_m else ""
        state = "applied" if self.is_applied else "not applied"
        why = f": {est.reason}" if est.reason else ""
        return (
            f"coarse shift ({dy:+.2f}, {dx:+.2f}) fine px{metres} {state} "
            f"(r {zero} -> {est.peak:.2f}, {len(est.pairs)} pair(s){why})"
        )


def check_mode(mode: str) -> Mode:
    """``mode`` validated; InputError (one line) otherwise."""
    if mode not in MODES:
        raise InputError(f"coregister: unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def decide(mode: str, estimate: ShiftEstimate | None, factor: int) -> Coregistration:
    """What to apply for ``estimate`` under ``mode`` (``require`` refuses an unreliable one).

    Raises
    ------
    InputError
        ``mode="require"`` and the estimate is unreliable (one line, cause and fix).
    """
    check_mode(mode)
    if mode == "off" or estimate is None:
        return Coregistration("off", factor=factor)
    if not estimate.reliable:
        line = (
            f"coarse/fine co-registration estimate unreliable ({estimate.reason}); "
            "coarse images left unshifted: check the coarse collection's alignment "
            "or set coregister: off"
        )
        if mode == "require":
            raise InputError(line.replace("left unshifted", "refused (coregister: require)"))
        return Coregistration(mode, factor=factor, estimate=estimate, warning=line)
    applied = estimate.shift if np.hypot(*estimate.shift) >= MIN_APPLIED else (0.0, 0.0)
    return Coregistration(mode, applied=applied, factor=factor, estimate=estimate)
