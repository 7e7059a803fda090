"""Fusion models behind one interface (:class:`FusionModel`), found by name in a registry.

The only package (with :mod:`pipeline.fuse` workers) that imports torch.
"""

from pipeline.models.base import FusionInput, FusionModel, Prediction, Scene
from pipeline.models.registry import available_models, create_model, load_model, register

__all__ = [
    "FusionInput",
    "FusionModel",
    "Prediction",
    "Scene",
    "available_models",
    "create_model",
    "load_model",
    "register",
]
