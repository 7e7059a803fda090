"""Model files: ``config.json`` (constructor arguments) + ``weights.safetensors``.

Never pickle: the config is JSON and the weights are a flat name -> tensor map,
so loading a model file cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pipeline.errors import InputError

CONFIG, WEIGHTS = "config.json", "weights.safetensors"


def save_checkpoint(directory: Path, config: dict[str, Any], module: torch.nn.Module) -> None:
    """Write ``config`` and the module's state dict (contiguous CPU copies)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    (directory / CONFIG).write_text(json.dumps(config, indent=2))


def load_weights(directory: Path, module: torch.nn.Module) -> None:
    """Load ``weights.safetensors`` into ``module``; InputError names the file when it fails."""
    path = Path(directory) / WEIGHTS
    try:
        state = load_file(str(path))
        module.load_state_dict(state)
    except (OSError, RuntimeError, SafetensorError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot load model weights {path}: {first}") from None
