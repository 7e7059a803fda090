"""The dense daily Zarr store: layout, region writes, completion, lock, provenance, reading.

Layout and rules are documented in ``docs/CONTRACTS.md`` and the README
("Store layout"). Readers (products, reports, notebooks) use
:mod:`pipeline.store.read`. Nothing here imports torch.
"""

from pipeline.store.layout import (
    FUSED,
    GAP,
    OBSERVED,
    SINGLE_PAIR,
    Grid,
    StoreLayout,
    build_template,
)
from pipeline.store.lock import StoreLock
from pipeline.store.read import QUALITY_FLAGS, open_checked, open_store
from pipeline.store.write import StoreState, prepare_store

__all__ = [
    "FUSED",
    "GAP",
    "OBSERVED",
    "QUALITY_FLAGS",
    "SINGLE_PAIR",
    "Grid",
    "StoreLayout",
    "StoreLock",
    "StoreState",
    "build_template",
    "open_checked",
    "open_store",
    "prepare_store",
]
