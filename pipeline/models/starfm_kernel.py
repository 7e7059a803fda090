"""STARFM's candidate loop without materialising the windows: numba on CPU, shifts on CUDA.

The per-pixel planes of :func:`pipeline.models.starfm._planes` (fine reference
``fine``, ``s = S + u_s``, ``t = T + u_t``, candidate prediction ``p``,
similarity threshold ``thr``; each (refs, band, y + 2r, x + 2r) float32,
NaN-padded by the radius r) are all a window needs. Unfolding them puts every
window in memory (961 x the image for a 31 px window) and makes the work
memory-bound; here each output pixel reads its candidates in place:

* **CPU** (:func:`accumulate_numba`): a numba-compiled loop, rows in parallel,
  the innermost loop over the image columns so it vectorises; per pixel it
  sums ``w``, ``w p`` and ``w p^2`` in float64.
* **any torch device** (:func:`accumulate_shifted`): one pass per window offset
  over the whole image (views of the padded planes, never copies of the
  windows), float64 sums; used on CUDA and where numba is not installed.

The candidate rule is that of :mod:`pipeline.models.starfm`, evaluated in
float32 exactly as there (so a candidate at the similarity threshold is decided
the same way); only the order of the weighted sums differs (results agree to
~1e-7 in reflectance).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

try:  # numba is a dependency; the torch path keeps a broken install usable
    import numba
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None  # type: ignore[assignment]


def _rows_kernel(fine, s, t, p, thr, dist, u_s, u_t, out):
    """Sums (3, band, y, x) float64 of w, w p, w p^2 over the kept candidates of each pixel.

    ``fine, s, t, p, thr`` : (refs, band, y + 2r, x + 2r) float32 NaN-padded planes;
    ``dist`` : (w, w) float32 ``1 + d / A``; ``u_s, u_t`` : float32 uncertainties.
    """
    n_refs, n_bands, hp, wp = fine.shape
    win = dist.shape[0]
    r = win // 2
    height, width = hp - 2 * r, wp - 2 * r
    for job in numba.prange(n_bands * height):
        b, y = job // height, job % height
        wsum = np.zeros(width)
        psum = np.zeros(width)
        p2sum = np.zeros(width)
        smax = np.empty(width, np.float32)
        tmax = np.empty(width, np.float32)
        for x in range(width):
            # largest over the pairs valid at the centre (centre_max); none valid: no bound
            sm, tm = -np.inf, -np.inf
            for k in range(n_refs):
                sk, tk = s[k, b, y + r, x + r], t[k, b, y + r, x + r]
                sm = sk if sk > sm else sm  # a NaN never compares greater
                tm = tk if tk > tm else tm
            smax[x] = (np.inf if sm == -np.inf else sm) + u_s
            tmax[x] = (np.inf if tm == -np.inf else tm) + u_t
        for k in range(n_refs):
            fc = fine[k, b, y + r, r : r + width]
            th = thr[k, b, y + r, r : r + width]
            for dy in range(win):
                frow, srow = fine[k, b, y + dy], s[k, b, y + dy]
                trow, prow = t[k, b, y + dy], p[k, b, y + dy]
                for dx in range(win):
                    d = dist[dy, dx]
                    # Branch-free so the column loop vectorises (~10x here). A cloudy
                    # centre (fc != fc: NaN) makes every candidate of its pair similar; an
                    # invalid candidate (NaN p) has a NaN s or t (never <= max).
                    for x in range(width):
                        sv, tv = srow[x + dx], trow[x + dx]
                        similar = (abs(frow[x + dx] - fc[x]) <= th[x]) | (fc[x] != fc[x])
                        ok = similar & (sv <= smax[x]) & (tv <= tmax[x])
                        w = np.float64(np.float32(1.0) / (sv * tv * d)) if ok else 0.0
                        pv = np.float64(prow[x + dx]) if ok else 0.0
                        wsum[x] += w
                        psum[x] += w * pv
                        p2sum[x] += w * pv * pv
        out[0, b, y] = wsum
        out[1, b, y] = psum
        out[2, b, y] = p2sum


_compiled: Any = None


def set_threads() -> None:
    """Numba's threads follow torch's (a Dask worker that limits torch limits the kernel too)."""
    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(most, torch.get_num_threads())))


def has_numba() -> bool:
    """Whether the compiled CPU kernel is available."""
    return numba is not None


def rows_kernel() -> Any:
    """The compiled :func:`_rows_kernel` (compiled on first use: importing the model stays cheap;
    numba caches the machine code on disk, so later processes load it)."""
    global _compiled
    if _compiled is None:
        _compiled = numba.njit(parallel=True, cache=True, nogil=True)(_rows_kernel)
    return _compiled


def accumulate_numba(planes: dict[str, Tensor], dist: Tensor, u_s: float, u_t: float) -> Tensor:
    """(3, band, y, x) float64 sums of w, w p, w p^2 on the CPU (see the module docstring)."""
    arrays = [planes[k].cpu().numpy() for k in ("fine", "s", "t", "p", "thr")]
    _, n_bands, hp, wp = arrays[0].shape
    r = dist.shape[0] // 2
    out = np.empty((3, n_bands, hp - 2 * r, wp - 2 * r), np.float64)
    square = dist.reshape(dist.shape[0], dist.shape[0]).cpu().numpy().astype(np.float32)
    set_threads()
    rows_kernel()(*arrays, square, np.float32(u_s), np.float32(u_t), out)
    return torch.from_numpy(out)


def centre_max(values: Tensor) -> Tensor:
    """(1, band, y, x) largest of (refs, band, y, x) over the refs that are not NaN.

    STARFM bounds the candidates' S and T by the centre's largest over the pairs; a pair
    that is cloudy at the centre has no value there and does not take part. Where no pair
    has one the bound is +inf (the candidates' own validity still applies), so a pixel
    cloudy in one pair is fused from the others instead of falling back to the coarse image.
    """
    largest = values.nan_to_num(nan=-torch.inf).amax(0, keepdim=True)
    return torch.where(largest == -torch.inf, torch.inf, largest)


def accumulate_shifted(planes: dict[str, Tensor], dist: Tensor, u_s: float, u_t: float) -> Tensor:
    """The same sums with one whole-image pass per window offset (any torch device)."""
    win = dist.shape[0]
    r = win // 2
    fine = planes["fine"]
    height, width = fine.shape[2] - 2 * r, fine.shape[3] - 2 * r

    def centre(name: str) -> Tensor:
        return planes[name][:, :, r : r + height, r : r + width]

    fc, th = centre("fine"), centre("thr")
    smax = centre_max(centre("s")) + u_s
    tmax = centre_max(centre("t")) + u_t
    out = torch.zeros((3, *fc.shape[1:]), dtype=torch.float64, device=fine.device)
    for dy in range(win):
        for dx in range(win):

            def at(name: str, dy: int = dy, dx: int = dx) -> Tensor:
                return planes[name][:, :, dy : dy + height, dx : dx + width]

            sv, tv, pv = at("s"), at("t"), at("p")
            similar = ((at("fine") - fc).abs() <= th) | fc.isnan()
            keep = similar & (sv <= smax) & (tv <= tmax) & ~pv.isnan()
            w = torch.where(keep, (sv * tv * dist[dy, dx]).reciprocal(), 0.0).double()
            pz = torch.where(keep, pv, 0.0).double()
            out[0] += w.sum(0)
            out[1] += (w * pz).sum(0)
            out[2] += (w * pz * pz).sum(0)
    return out


def accumulate(planes: dict[str, Tensor], dist: Tensor, u_s: float, u_t: float) -> Tensor:
    """Kernel for the planes' device: numba on CPU (when installed), shifted passes otherwise.

    Returns
    -------
    (3, band, y, x) float64 tensor on the planes' device: sums of ``w``, ``w p``, ``w p^2``.
    """
    if planes["fine"].device.type == "cpu" and has_numba():
        return accumulate_numba(planes, dist, u_s, u_t)
    return accumulate_shifted(planes, dist, u_s, u_t)
