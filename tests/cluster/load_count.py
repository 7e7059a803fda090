"""Worker preload (``dask worker --preload tests.cluster.load_count``): counts model builds.

Every build of a model from the bytes a run ships (:meth:`ModelPayload.build`) is
recorded with the payload's key in :data:`BUILDS`; a test reads the list on every worker
after the run (``client.run``) to show that each worker built the run's model once.
"""

from __future__ import annotations

from typing import Any

from pipeline.fuse import worker as fuse_worker

#: Keys of the payloads this worker process built, in order.
BUILDS: list[str] = []


def builds() -> list[str]:
    """This worker's :data:`BUILDS` (for ``client.run``)."""
    return list(BUILDS)


def dask_setup(worker: Any) -> None:
    """Wrap :meth:`ModelPayload.build` so every build is recorded."""
    original = fuse_worker.ModelPayload.build

    def counted(self: fuse_worker.ModelPayload) -> Any:
        BUILDS.append(self.key)
        return original(self)

    fuse_worker.ModelPayload.build = counted  # type: ignore[method-assign]
