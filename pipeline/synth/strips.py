"""The strip plan: the world is generated and written in bands of whole rows.

Peak memory is set by one strip (rows x width x a few dozen bytes) plus small coarse
state, never by the world's area. Strip heights are multiples of the COG block so the
windowed writes fill whole blocks; the generators are keyed on position, so results do
not depend on the plan.
"""

from __future__ import annotations

#: Target pixels per strip (512 x 512): strips get shorter as worlds get wider.
STRIP_PIXELS = 1 << 18
#: Strip heights are multiples of this (the Landsat COG block, rows).
ROW_QUANTUM = 64


def strip_height(width: int) -> int:
    """Rows per strip for a world ``width`` px wide: a multiple of :data:`ROW_QUANTUM`."""
    return max(ROW_QUANTUM, STRIP_PIXELS // max(width, 1) // ROW_QUANTUM * ROW_QUANTUM)


def strip_plan(height: int, width: int) -> list[tuple[int, int]]:
    """(first row, past-last row) of each strip covering ``height`` rows, top to bottom."""
    step = strip_height(width)
    return [(r0, min(r0 + step, height)) for r0 in range(0, height, step)]
