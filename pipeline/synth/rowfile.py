"""A 2-D raster in a plain ``.npy`` file, written and read a strip of rows at a time.

The world's static per-pixel layers live on disk, not in memory: the builder appends
strips as it generates them and every truth day reads back only the rows it needs (file
reads, not a memory map, so pages read once do not stay in the process's RSS).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_header(path: Path, dtype: np.dtype, shape: tuple[int, int]) -> None:
    """Start an ``.npy`` of ``shape`` (rows, cols) at ``path``; :func:`append_rows` fills it."""
    with open(path, "wb") as f:
        header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)


def append_rows(path: Path, rows: np.ndarray) -> None:
    """Append (rows, cols) C-ordered data to a file begun by :func:`write_header`."""
    with open(path, "ab") as f:
        f.write(np.ascontiguousarray(rows).tobytes())


def read_rows(path: Path, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0..r1`` of the ``.npy`` raster at ``path``: (r1 - r0, cols), its dtype."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(f)
        width = shape[1]
        f.seek(r0 * width * dtype.itemsize, 1)
        data = np.fromfile(f, dtype=dtype, count=(r1 - r0) * width)
    return data.reshape(r1 - r0, width)
