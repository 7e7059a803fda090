"""The dense daily Zarr store: layout, region writes, completion, lock, provenance.

Layout and rules are documented in ``docs/CONTRACTS.md`` and the README
("Store layout"). Nothing here imports torch.
"""

from pipeline.store.layout import Grid, StoreLayout, build_template
from pipeline.store.lock import StoreLock
from pipeline.store.write import StoreState, prepare_store

__all__ = ["Grid", "StoreLayout", "StoreLock", "StoreState", "build_template", "prepare_store"]
