"""Find fusion models by name without importing torch until one is created.

Each entry maps a registry name to ``"module:Class"``; the class implements
:class:`pipeline.models.base.FusionModel` and has::

    Class(bands: tuple[str, ...], size: str = "full", **params)  # fresh model
    Class.from_config(config: dict) -> Class                        # rebuilt from config.json

Add a model by writing its module and one line in :data:`pipeline.model_table.MODELS`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.model_table import MODELS as _MODELS
from pipeline.model_table import available_models, register
from pipeline.models.base import FusionModel

__all__ = ["available_models", "create_model", "load_model", "model_class", "register"]


def model_class(name: str) -> type[FusionModel]:
    """The class registered under ``name``; InputError lists the names if unknown."""
    if name not in available_models():
        raise InputError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    module, cls = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def create_model(
    name: str, bands: tuple[str, ...], size: str = "full", **params: Any
) -> FusionModel:
    """A fresh (untrained) model."""
    return model_class(name)(bands=bands, size=size, **params)  # type: ignore[call-arg]


def load_model(directory: str | Path) -> FusionModel:
    """Rebuild a saved model from ``config.json`` + ``weights.safetensors`` (never pickle)."""
    directory = Path(directory)
    cfg_path = directory / "config.json"
    try:
        config = json.loads(cfg_path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read model config {cfg_path}: {exc.strerror or exc}") from None
    except ValueError:
        raise InputError(f"model config {cfg_path} is not valid JSON") from None
    if not isinstance(config, dict) or "name" not in config:
        raise InputError(f"model config {cfg_path} has no 'name' field")
    return model_class(config["name"]).from_config(config, directory)  # type: ignore[attr-defined]
