"""Products derived from the fused store: indices, smoothing, phenology, crop map, feeds.

Entry point for ``pipeline.run``: :func:`run_products`. The submodules are small and
importable on their own (``pipeline.products.smoothing`` etc.); torch is imported only
by :mod:`pipeline.products.temporal_net`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["run_products"]


def run_products(
    store_path: str | Path, products_spec: Any, out_dir: str | Path, run_id: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:  # fmt: skip
    """Derive the products ``products_spec`` (a :class:`pipeline.config.ProductsSpec`) asks for.

    Outputs go to ``<out_dir>/products/<run_id>/`` (``run_id`` defaults to a UTC timestamp);
    an existing run is refused with :class:`pipeline.errors.StoreError` unless ``overwrite``.
    Returns output name -> path (Zarr, COG, GeoParquet, STAC ``collection.json``, manifest).
    """
    from pipeline.products.runner import run_products as _run

    return _run(store_path, products_spec, out_dir, run_id, overwrite)
