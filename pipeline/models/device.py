"""Device helpers of the torch models: which device, bf16 autocast, batches as tensors.

Kept apart from the model base class (:mod:`pipeline.models._torch`) so the classic
window models (STARFM and kin) and the training engine pick and use devices the same way.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from pipeline.errors import InputError
from pipeline.models.patches import Batch


def pick_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when this process sees a GPU, else CPU; otherwise the named device.

    Raises
    ------
    InputError : the name is not a torch device, or CUDA is named but absent.
    """
    if str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise InputError(
            f"unknown model device {spec!r}; set model.params.device to auto, cpu or cuda"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"model device {spec!r} asked for but this worker has no CUDA; "
            "use device: auto (GPU where present) or cpu"
        )
    return device


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA (no grad scaler needed for bf16); a no-op on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_tensors(batch: Batch, device: torch.device) -> Batch:
    """The same batch with every array as a float32 tensor on ``device``."""
    fields = ("refs_coarse", "refs_fine", "tgt_coarse", "tgt_fine", "valid", "days")
    return Batch(*(torch.as_tensor(getattr(batch, f), device=device) for f in fields))
