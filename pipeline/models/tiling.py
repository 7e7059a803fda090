"""Tiling of a fine image for prediction: core tiles of a fixed size, padded by the model's halo."""

from __future__ import annotations

from collections.abc import Iterator


def tile_origins(height: int, width: int, tile: int) -> Iterator[tuple[int, int]]:
    """Top-left corners (y, x) of the ``tile`` x ``tile`` px core tiles covering the image."""
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            yield y, x
