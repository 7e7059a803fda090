"""Evaluate a fusion model on a manifest of dated fine/coarse rasters (``stf evaluate``)."""

from pipeline.evaluate.manifest import Dataset, Manifest, load_manifest
from pipeline.evaluate.rasters import load_dataset
from pipeline.evaluate.runner import evaluate

__all__ = ["Dataset", "Manifest", "evaluate", "load_dataset", "load_manifest"]
