"""Products of a store on an object store: written in a local staging folder, then copied
beside the store (``<store prefix>/products/<run_id>/``) in one upload.

The product writers (Zarr, COG, GeoParquet, STAC with relative hrefs) all write
local files; staging keeps them so and makes the upload the only remote step.
A run folder on the object store is never overwritten without ``overwrite``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipeline.errors import StoreError


class ObjectPath(str):
    """The URL of one uploaded output; a ``str`` with the ``name`` and ``parent`` of a path."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.rstrip("/").rsplit("/", 1)[0])


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


def remote_run_dir(prefix: str, run_id: str, overwrite: bool) -> tuple[str, Path]:
    """Check ``<prefix>/products/<run_id>`` is free (or clear it); make a local staging folder.

    Returns
    -------
    (target URL, local staging folder of the same name)

    Raises
    ------
    StoreError : the run folder exists and ``overwrite`` is False, or cannot be listed.
    """
    target = f"{prefix.rstrip('/')}/products/{run_id}"
    fs, path = _fs(target)
    try:
        fs.invalidate_cache()
        taken = bool(fs.exists(path) and fs.find(path))
        if taken and overwrite:
            fs.rm(path, recursive=True)
    except OSError as exc:
        raise StoreError(
            f"cannot use {target}: {exc}; check the bucket and the AWS_*/credential environment"
        ) from None
    if taken and not overwrite:
        raise StoreError(
            f"products run {target} already exists; pass --overwrite or another --run-id"
        )
    staging = Path(tempfile.mkdtemp(prefix="stf-products-")) / run_id
    staging.mkdir()
    return target, staging


def upload(staging: Path, target: str, outputs: dict[str, Path]) -> dict[str, Any]:
    """Copy the staged run folder to ``target``, remove the staging copy.

    Returns
    -------
    ``outputs`` with every path replaced by its :class:`ObjectPath` URL under ``target``.
    """
    fs, path = _fs(target)
    try:
        for local in sorted(p for p in staging.rglob("*") if p.is_file()):
            fs.put_file(str(local), f"{path}/{local.relative_to(staging).as_posix()}")
    except OSError as exc:
        raise StoreError(
            f"cannot upload products to {target}: {exc}; check the bucket and its permissions, "
            "then rerun the products"
        ) from None
    shutil.rmtree(staging.parent, ignore_errors=True)
    return {
        name: ObjectPath(f"{target}/{Path(local).relative_to(staging).as_posix()}")
        for name, local in outputs.items()
    }
