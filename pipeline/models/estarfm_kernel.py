"""ESTARFM's window sums, read in place: numba on CPU, one pass per window offset elsewhere.

Every quantity ESTARFM derives from a window (Zhu et al. 2010; see
:mod:`pipeline.models.estarfm`) is a sum over the *similar* pixels of the
window, so the kernels only accumulate those sums; the per-pixel arithmetic
that follows (conversion coefficient, guard, temporal weights) is vectorised
in :mod:`pipeline.models.estarfm`. A candidate is similar when it is valid in
every image and, in every band, ``|F_k(cand) - F_k(centre)| < th_k`` at both
reference dates k (strict, as the reference code).

Sums per pixel (float64): ``n`` (similar pixels), ``sum w`` with
``w = 1 / ((1 - R) D + 1e-7)``, then per band the 14 sums of :data:`BAND_SUMS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.models.starfm_kernel import has_numba, numba, set_threads

#: Per-band sums, in order (w: combined-distance weight; x1/x2 coarse, y1/y2 fine, 0 target).
BAND_SUMS = (
    "w_dc1", "w_dc2", "w_f1", "w_f2", "c1", "c2", "f1", "f2",
    "c1c1", "c2c2", "f1f1", "f2f2", "f1c1", "f2c2",
)  # fmt: skip
N_SUMS = len(BAND_SUMS)


def _sums_kernel(f1, f2, c1, c2, c0, valid, corr, th1, th2, dist, out):
    """Fill ``out`` (2 + 14 band, y, x) float64 with the similar-pixel sums of each pixel.

    ``f1, f2, c1, c2, c0`` : (band, y + 2r, x + 2r) float32 NaN-padded images;
    ``valid`` (y + 2r, x + 2r) bool; ``corr`` (y + 2r, x + 2r) float32 correlation R;
    ``th1, th2`` (band, y, x) float32 thresholds; ``dist`` (w, w) float32 ``1 + d / r``.
    """
    n_bands, hp, wp = f1.shape
    win = dist.shape[0]
    r = win // 2
    height, width = hp - 2 * r, wp - 2 * r
    for y in numba.prange(height):
        acc = np.zeros((2 + N_SUMS * n_bands, width))
        for dy in range(win):
            for dx in range(win):
                d = dist[dy, dx]
                for x in range(width):
                    yy, xx = y + dy, x + dx
                    if not valid[yy, xx]:
                        continue
                    ok = True
                    for b in range(n_bands):
                        ok = ok and abs(f1[b, yy, xx] - f1[b, y + r, x + r]) < th1[b, y, x]
                        ok = ok and abs(f2[b, yy, xx] - f2[b, y + r, x + r]) < th2[b, y, x]
                    if not ok:
                        continue
                    w = 1.0 / ((1.0 - np.float64(corr[yy, xx])) * d + 1e-7)
                    acc[0, x] += 1.0
                    acc[1, x] += w
                    for b in range(n_bands):
                        a1, a2 = np.float64(f1[b, yy, xx]), np.float64(f2[b, yy, xx])
                        x1, x2 = np.float64(c1[b, yy, xx]), np.float64(c2[b, yy, xx])
                        x0 = np.float64(c0[b, yy, xx])
                        k = 2 + N_SUMS * b
                        acc[k, x] += w * (x0 - x1)
                        acc[k + 1, x] += w * (x0 - x2)
                        acc[k + 2, x] += w * a1
                        acc[k + 3, x] += w * a2
                        acc[k + 4, x] += x1
                        acc[k + 5, x] += x2
                        acc[k + 6, x] += a1
                        acc[k + 7, x] += a2
                        acc[k + 8, x] += x1 * x1
                        acc[k + 9, x] += x2 * x2
                        acc[k + 10, x] += a1 * a1
                        acc[k + 11, x] += a2 * a2
                        acc[k + 12, x] += a1 * x1
                        acc[k + 13, x] += a2 * x2
        out[:, y] = acc


_compiled: Any = None


def _numba_sums(images: dict[str, Tensor], valid: Tensor, corr: Tensor, th: Tensor, dist: Tensor):
    """CPU path of :func:`window_sums`."""
    global _compiled
    if _compiled is None:  # compile on first use: importing the model stays cheap
        _compiled = numba.njit(parallel=True, cache=True, nogil=True)(_sums_kernel)
    arrays = [images[k].cpu().numpy() for k in ("f1", "f2", "c1", "c2", "c0")]
    n_bands, hp, wp = arrays[0].shape
    r = dist.shape[0] // 2
    out = np.empty((2 + N_SUMS * n_bands, hp - 2 * r, wp - 2 * r), np.float64)
    th_np = np.ascontiguousarray(th.cpu().numpy(), np.float32)
    set_threads()
    _compiled(
        *arrays, valid.cpu().numpy(), corr.cpu().numpy(), th_np[0], th_np[1],
        dist.cpu().numpy().astype(np.float32), out,
    )  # fmt: skip
    return torch.from_numpy(out)


def _shifted_sums(
    images: dict[str, Tensor], valid: Tensor, corr: Tensor, th: Tensor, dist: Tensor
) -> Tensor:
    """Any-device path of :func:`window_sums`: one whole-image pass per window offset."""
    win = dist.shape[0]
    r = win // 2
    n_bands, hp, wp = images["f1"].shape
    height, width = hp - 2 * r, wp - 2 * r
    centre = {k: images[k][:, r : r + height, r : r + width] for k in ("f1", "f2")}
    thr = th
    out = torch.zeros(
        (2 + N_SUMS * n_bands, height, width), dtype=torch.float64, device=corr.device
    )
    for dy in range(win):
        for dx in range(win):
            at = {k: v[..., dy : dy + height, dx : dx + width] for k, v in images.items()}
            ok = valid[dy : dy + height, dx : dx + width].clone()
            ok &= ((at["f1"] - centre["f1"]).abs() < thr[0]).all(0)
            ok &= ((at["f2"] - centre["f2"]).abs() < thr[1]).all(0)
            okd = ok.double()
            rr = corr[dy : dy + height, dx : dx + width].double()
            w = okd / ((1.0 - rr) * float(dist[dy, dx]) + 1e-7)
            out[0] += okd
            out[1] += w
            z = {k: torch.where(ok, v, 0.0).double() for k, v in at.items()}
            terms = (
                w * (z["c0"] - z["c1"]), w * (z["c0"] - z["c2"]), w * z["f1"], w * z["f2"],
                z["c1"], z["c2"], z["f1"], z["f2"], z["c1"] ** 2, z["c2"] ** 2,
                z["f1"] ** 2, z["f2"] ** 2, z["f1"] * z["c1"], z["f2"] * z["c2"],
            )  # fmt: skip
            out[2:] += torch.stack(terms, 1).reshape(-1, height, width)
    return out


def window_sums(
    images: dict[str, Tensor], valid: Tensor, corr: Tensor, th: Tensor, dist: Tensor
) -> Tensor:
    """Similar-pixel sums of every pixel (see the module docstring).

    Parameters
    ----------
    images : ``f1, f2, c1, c2, c0`` (band, y + 2r, x + 2r) float32, NaN-padded by r.
    valid : (y + 2r, x + 2r) bool, every image valid in every band.
    corr : (y + 2r, x + 2r) float32 correlation R of each pixel's fine and coarse spectra.
    th : (2, band, y, x) float32 similarity thresholds of the two fine references.
    dist : (w, w) float32 relative distance ``1 + d / r``.

    Returns
    -------
    (2 + 14 band, y, x) float64 on the images' device: ``n``, ``sum w``, then
    :data:`BAND_SUMS` for band 0, band 1, ...
    """
    if corr.device.type == "cpu" and has_numba():
        return _numba_sums(images, valid, corr, th, dist)
    return _shifted_sums(images, valid, corr, th, dist)
