"""Store throughput: Zarr region writes and reads with the project's encodings vs raw disk speed.

The store is written the way the fusion writes it (:func:`pipeline.store.write.prepare_store`
then one :func:`pipeline.store.write.write_block` per spatial block) and read back
decoded with :func:`pipeline.store.write.open_store`. Raw disk speed is measured
in the same run with a file of the store's on-disk byte count: written and
``fsync``'d, evicted from the page cache, read back (``O_DIRECT`` where the
file system allows it). The store's files are evicted the same way before its read.
"""

from __future__ import annotations

import datetime as dt
import mmap
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from benchmarks import synthetic
from benchmarks.common import BANDS, load, smooth_field
from pipeline.store.layout import FUSED, StoreLayout
from pipeline.store.write import DONE, open_store, prepare_store, write_block

CHUNK = 1 << 22  # 4 MiB I/O blocks for the raw disk figures


def _evict(path: Path) -> None:
    """Drop a file's pages from the page cache (so the next read comes from disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _store_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def disk_speed(folder: Path, n_bytes: int) -> dict[str, float]:
    """Seconds to write (+fsync) and read back ``n_bytes`` in one file (dd-style)."""
    path = folder / "dd.bin"
    buf = os.urandom(CHUNK)
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for done in range(0, n_bytes, CHUNK):
            f.write(buf[: min(CHUNK, n_bytes - done)])
        os.fsync(f.fileno())
    write_s = time.perf_counter() - start
    _evict(path)
    start = time.perf_counter()
    direct = _read_direct(path)
    read_s = time.perf_counter() - start
    path.unlink()
    return {"write_s": write_s, "read_s": read_s, "o_direct": direct}


def _read_direct(path: Path) -> bool:
    """Read ``path`` with O_DIRECT if allowed (aligned buffer), else normally; True if direct."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECT", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        fd, flags = os.open(path, os.O_RDONLY), os.O_RDONLY
    buf = mmap.mmap(-1, CHUNK)
    try:
        while os.readv(fd, [buf]) > 0:
            pass
    except OSError:  # the file system refused O_DIRECT reads
        os.close(fd)
        path.read_bytes()
        return False
    finally:
        buf.close()
    os.close(fd)
    return bool(flags & getattr(os, "O_DIRECT", 0))


def _block_dataset(n_days: int, shape: tuple[int, int], layout: StoreLayout) -> xr.Dataset:
    """A block of fused-looking values: smooth reflectance, NDVI, uncertainty, flags."""
    rng = np.random.default_rng(0)
    dims = ("time", "y", "x")
    values = {b: smooth_field(rng, (n_days, *shape)) for b in layout.bands}
    red, nir = values["red"], values["nir"]
    out = {b: (dims, v) for b, v in values.items()}
    out["ndvi"] = (dims, (nir - red) / (nir + red))
    out["uncertainty"] = (dims, 0.01 * smooth_field(rng, (n_days, *shape)))
    out["ref_before_days"] = (dims, np.full((n_days, *shape), 3, np.int16))
    out["ref_after_days"] = (dims, np.full((n_days, *shape), 5, np.int16))
    out["quality"] = (dims, np.full((n_days, *shape), FUSED, np.uint8))
    return xr.Dataset(out)


def encoded_bytes(layout: StoreLayout, n_pixel_days: int) -> int:
    """Uncompressed bytes of the encoded variables (int16 packed, int16 ref days, uint8 quality)."""
    return n_pixel_days * (2 * len(layout.packed) + 2 * 2 + 1)


def store_speed(folder: Path, size: int, n_days: int, chunk: int) -> dict[str, Any]:
    """Write a ``size``² x ``n_days`` store block by block, then read it all back decoded."""
    layout = StoreLayout(BANDS[3], chunk_time=n_days, chunk_y=chunk, chunk_x=chunk)
    days = [dt.date(2024, 6, 1) + dt.timedelta(days=i) for i in range(n_days)]
    url = str(folder / "store.zarr")
    prepare_store(url, synthetic.grid(size), days, layout, "bench")
    block = _block_dataset(n_days, (chunk, chunk), layout)
    done = np.full(n_days, DONE, np.uint8)
    start = time.perf_counter()
    for by in range(size // chunk):
        for bx in range(size // chunk):
            ys, xs = slice(by * chunk, (by + 1) * chunk), slice(bx * chunk, (bx + 1) * chunk)
            region = {"time": slice(0, n_days), "y": ys, "x": xs}
            write_block(url, block, region, (by, bx), done)
    os.sync()
    write_s = time.perf_counter() - start
    files = _store_files(Path(url))
    for path in files:
        _evict(path)
    start = time.perf_counter()
    open_store(url).load()
    read_s = time.perf_counter() - start
    return {
        "write_s": write_s,
        "read_s": read_s,
        "disk_bytes": sum(p.stat().st_size for p in files),
        "encoded_bytes": encoded_bytes(layout, n_days * size * size),
        "decoded_bytes": 4 * n_days * size * size * len(layout.variables),
        "pixel_days": n_days * size * size,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Store write/read vs disk on the same byte count; compression of the chosen encodings."""
    size, n_days, chunk = (128, 16, 64) if quick else (256, 32, 128)
    with tempfile.TemporaryDirectory(prefix="stf-store-bench-") as tmp:
        store = store_speed(Path(tmp), size, n_days, chunk)
        disk = disk_speed(Path(tmp), store["disk_bytes"])
    return {
        "size": size,
        "days": n_days,
        "chunk": chunk,
        "store": store,
        "disk": disk,
        "compression_ratio": store["encoded_bytes"] / store["disk_bytes"],
        "write_vs_disk": disk["write_s"] / store["write_s"],
        "read_vs_disk": disk["read_s"] / store["read_s"],
        "load": load(),
    }
