"""The starfm4py comparison skips, with its reason, unless a checkout of the peer is given."""

from __future__ import annotations

import numpy as np

from benchmarks.starfm4py_peer import run_peer


def _case() -> dict[str, np.ndarray]:
    image = np.full((8, 8), 0.1, np.float32)
    return {"fine": image, "coarse": image, "target": image, "truth": image}


def test_no_checkout_is_skipped_with_the_reason() -> None:
    assert "no starfm4py checkout" in run_peer(_case(), None)["skipped"]


def test_a_folder_that_is_not_the_peer_is_skipped(tmp_path) -> None:
    assert "not a starfm4py checkout" in run_peer(_case(), tmp_path)["skipped"]


def test_slices_must_divide_the_image(tmp_path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "starfm4py.py").write_text("")
    assert "not a multiple" in run_peer(_case(), tmp_path, rows=3)["skipped"]
