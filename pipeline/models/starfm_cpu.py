"""STARFM on the CPU in compiled loops only: per-pixel planes, candidate sums, result.

:mod:`pipeline.models.starfm_kernel` compiles STARFM's candidate loop; the
per-pixel planes it reads (validity, the window standard deviation behind the
similarity threshold, ``S``, ``T``, the candidate prediction, NaN padding) and the
final division were still some thirty whole-image torch operations per call. With
the 5 px window of a run those took ~10x the candidate loop itself: each operation
allocates a fresh image, and on a Dask worker every allocation is a fresh page-faulted
mapping (profile of the 512² x 16-day chain, ``benchmarks/results.md``, "Fuse stage
profile"). Here the planes are written by one compiled pass into arrays allocated
once, and the result by another.

Every value is computed with the same float32 / float64 operations in the same order
as the torch path of :func:`pipeline.models.starfm._planes` and
:func:`pipeline.models.starfm._in_place` (float32 element-wise arithmetic, float64
running box sums: a sequential cumulative sum along y, then along x, combined as
``((A - B) - C) + D``), so the two paths give the same bits
(``tests/models/test_starfm_cpu.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.models.starfm_kernel import numba, rows_kernel, set_threads

_compiled: dict[str, Any] = {}


def _box_sums(plane, width, acc):
    """In ``acc`` (y + width, x + width): running sums of the (y, x) float64 ``plane`` padded by
    ``r + 1`` before and ``r`` after with zeros (``r = width // 2``), along y then along x."""
    r = width // 2
    height, wid = plane.shape
    acc[:, :] = 0.0
    for y in range(height):
        acc[y + r + 1, r + 1 : r + 1 + wid] = plane[y]
    for y in range(1, acc.shape[0]):  # cumsum along y (sequential, as torch's)
        for x in range(acc.shape[1]):
            acc[y, x] += acc[y - 1, x]
    for y in range(acc.shape[0]):  # then along x
        for x in range(1, acc.shape[1]):
            acc[y, x] += acc[y, x - 1]


def _window_value(acc, y, x, width):
    """Box sum of the window centred on (y, x) from :func:`_box_sums`'s running sums."""
    return acc[y + width, x + width] - acc[y, x + width] - acc[y + width, x] + acc[y, x]


def _plane_job(fine, coarse, target, k, b, width, scale, u_s, u_t, fp, sp, tp, pp, thp):
    """The planes of reference ``k``, band ``b`` (see :func:`_planes_kernel`).

    A function of its own so its scratch arrays belong to one thread: numba may hoist an
    allocation written directly in a ``prange`` body out of the loop (shared by all threads).
    """
    _, _, height, wid = fine.shape
    r = width // 2
    nan = np.float32(np.nan)
    for plane in (fp, sp, tp, pp, thp):
        plane[k, b] = nan
    v = np.zeros((height, wid))
    fz = np.zeros((height, wid))
    for y in range(height):
        for x in range(wid):
            f, c, t = fine[k, b, y, x], coarse[k, b, y, x], target[b, y, x]
            ok = not (np.isnan(f) or np.isnan(c) or np.isnan(t))
            fp[k, b, y + r, x + r] = f
            sp[k, b, y + r, x + r] = np.abs(f - c) + u_s
            tp[k, b, y + r, x + r] = np.abs(t - c) + u_t
            pp[k, b, y + r, x + r] = (f + t) - c if ok else nan
            if ok:
                v[y, x] = 1.0
                fz[y, x] = np.float64(f)
    count = np.empty((height + width, wid + width))
    total = np.empty_like(count)
    squares = np.empty_like(count)
    _box_sums(v, width, count)
    _box_sums(fz, width, total)
    _box_sums(fz * fz, width, squares)
    for y in range(height):
        for x in range(wid):
            n = max(_window_value(count, y, x, width), 1.0)
            mean = _window_value(total, y, x, width) / n
            var = _window_value(squares, y, x, width) / n - mean * mean
            var = 0.0 if var < 0.0 else var
            thp[k, b, y + r, x + r] = np.float32(np.sqrt(var)) * scale


def _planes_kernel(fine, coarse, target, width, scale, u_s, u_t, fp, sp, tp, pp, thp):
    """Fill the NaN-padded planes ``fp, sp, tp, pp, thp`` (refs, band, y + 2r, x + 2r) float32.

    ``fine, coarse`` (refs, band, y, x), ``target`` (band, y, x) float32; ``scale`` float32
    ``2 / num_classes``; ``u_s, u_t`` float32. See :func:`pipeline.models.starfm._planes`.
    """
    n_refs, n_bands = fine.shape[:2]
    for job in numba.prange(n_refs * n_bands):
        k, b = job // n_bands, job % n_bands
        _plane_job(fine, coarse, target, k, b, width, scale, u_s, u_t, fp, sp, tp, pp, thp)


def _finish_kernel(sums, target, pred, spread):
    """Prediction and spread (band, y, x) float32 from the (3, band, y, x) float64 sums.

    As :func:`pipeline.models.starfm._in_place`: the target coarse value where no
    candidate was kept or the target is NaN (spread NaN there).
    """
    n_bands, height, wid = target.shape
    for job in numba.prange(n_bands * height):
        b, y = job // height, job % height
        for x in range(wid):
            w = max(sums[0, b, y, x], 1e-300)
            p = sums[1, b, y, x] / w
            var = sums[2, b, y, x] / w - p * p
            var = 0.0 if var < 0.0 else var
            fallback = np.float64(target[b, y, x])
            if sums[0, b, y, x] > 0.0 and not np.isnan(fallback):
                pred[b, y, x] = np.float32(p)
                spread[b, y, x] = np.float32(np.sqrt(var))
            else:
                pred[b, y, x] = np.float32(fallback)
                spread[b, y, x] = np.float32(np.nan)


def _jit(name: str, fn: Any) -> Any:
    """``fn`` compiled once per process (cached on disk by numba across processes)."""
    if name not in _compiled:
        _compiled[name] = numba.njit(parallel=True, cache=True, nogil=True)(fn)
    return _compiled[name]


# helpers called from compiled code are compiled on first use of the kernels
_box_sums = numba.njit(cache=True, nogil=True)(_box_sums) if numba is not None else _box_sums
_plane_job = numba.njit(cache=True, nogil=True)(_plane_job) if numba is not None else _plane_job
_window_value = (
    numba.njit(cache=True, nogil=True, inline="always")(_window_value)
    if numba is not None
    else _window_value
)


def starfm_compiled(
    fine: np.ndarray,
    coarse: np.ndarray,
    target: np.ndarray,
    dist: np.ndarray,
    num_classes: float,
    u_s: float,
    u_t: float,
) -> tuple[np.ndarray, np.ndarray]:
    """STARFM on the CPU, every step compiled (same bits as the torch-planes path).

    Parameters
    ----------
    fine, coarse : (refs, band, y, x) float32 reference pairs, NaN = invalid.
    target : (band, y, x) float32 target-date coarse image on the fine grid.
    dist : (w, w) float32 relative distance weights ``1 + d / A`` of the window.
    num_classes : estimated number of land-cover classes (similarity threshold).
    u_s, u_t : spectral and temporal uncertainties (reflectance).

    Returns
    -------
    (band, y, x) float32 prediction and (band, y, x) float32 weighted spread.
    """
    fine = np.ascontiguousarray(fine, np.float32)
    coarse = np.ascontiguousarray(coarse, np.float32)
    target = np.ascontiguousarray(target, np.float32)
    width = dist.shape[0]
    r = width // 2
    n_refs, n_bands, height, wid = fine.shape
    padded = (n_refs, n_bands, height + 2 * r, wid + 2 * r)
    fp, sp, tp, pp, thp = (np.empty(padded, np.float32) for _ in range(5))
    set_threads()
    _jit("planes", _planes_kernel)(
        fine,
        coarse,
        target,
        width,
        np.float32(2.0 / num_classes),
        np.float32(u_s),
        np.float32(u_t),
        fp,
        sp,
        tp,
        pp,
        thp,
    )
    sums = np.empty((3, n_bands, height, wid), np.float64)
    square = np.ascontiguousarray(dist, np.float32)
    rows_kernel()(fp, sp, tp, pp, thp, square, np.float32(u_s), np.float32(u_t), sums)
    pred = np.empty((n_bands, height, wid), np.float32)
    spread = np.empty_like(pred)
    _jit("finish", _finish_kernel)(sums, target, pred, spread)
    return pred, spread
