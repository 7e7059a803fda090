"""Small synthetic scenes shared by the model tests (fast on 2 CPU cores)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pytest
import torch

from pipeline.models import Scene

torch.set_num_threads(1)


def make_scenes(n_bands: int = 3, size: int = 32, n_dates: int = 3, seed: int = 0) -> list[Scene]:
    """Scenes with fine detail, 8x8 block-mean coarse images and a date-dependent shift."""
    rng = np.random.default_rng(seed)
    base = 0.2 + 0.1 * rng.random((n_bands, size, size))
    scenes = []
    for i in range(n_dates):
        fine = (base + 0.03 * i * np.linspace(0.5, 1.5, n_bands)[:, None, None]).astype(np.float32)
        blocks = fine.reshape(n_bands, size // 8, 8, size // 8, 8).mean((2, 4))
        coarse = blocks.repeat(8, 1).repeat(8, 2).astype(np.float32)
        scenes.append(Scene(dt.date(2001, 5, 1) + dt.timedelta(days=16 * i), coarse, fine))
    return scenes


@pytest.fixture
def scene_factory() -> Callable[..., list[Scene]]:
    """:func:`make_scenes`, as a fixture (test modules here are not a package)."""
    return make_scenes
