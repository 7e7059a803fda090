"""One chain of typed stages: search -> cubes -> model (train | select | load) -> fuse -> products.

Each stage is a function of the frozen run configuration and the previous stage's
artefact; each artefact saves itself to and loads itself from the run directory
(:func:`run_dir`) or the store URL::

    items = search(cfg)                     # Items        -> items.json
    cube_set = cubes(cfg, items)            # CubeSet      -> cubes.json
    trained = model(cfg, cube_set)          # TrainedModel -> models/<name>-<key>/
    store = fuse(cfg, cube_set, trained)    # FusedStore   -> the Zarr store
    outputs = products(cfg.products, store, cfg.output_root)

:func:`pipeline.run.run` is that composition in one process; ``flows/`` calls the
same functions as tasks and only passes the artefacts' paths between them.
"""

from pipeline.stages.artefacts import CubeSet, FusedStore, Items, TrainedModel, run_dir, store_url
from pipeline.stages.chain import (
    check_store_region,
    cubes,
    fuse,
    model,
    products,
    search,
    size,
    store_lock,
)
from pipeline.stages.size import RunEstimate

__all__ = [
    "CubeSet",
    "FusedStore",
    "Items",
    "RunEstimate",
    "TrainedModel",
    "check_store_region",
    "cubes",
    "fuse",
    "model",
    "products",
    "run_dir",
    "search",
    "size",
    "store_lock",
    "store_url",
]
