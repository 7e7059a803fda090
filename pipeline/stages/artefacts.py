"""The typed artefacts the stages hand on, each saving itself to and loading itself from disk.

One format per stage, in the run directory (:func:`run_dir`)::

    items.json    Items      the STAC items found (full item JSON, fine + coarse) and the API URL
    cubes.json    CubeSet    the items file, pairs, item ids read and the cubes' CubeFacts
    models/<key>/ TrainedModel  config.json + weights.safetensors (+ selection.json)
    the store     FusedStore the Zarr store (its URL); products go beside it

A loaded artefact is the same object the stage returned in memory: the cubes are
rebuilt lazily from the items and facts (no second read of the season), the model
from its directory. ``pipeline.run`` passes artefacts in memory; ``flows/`` passes
their paths between tasks and loads them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pystac

from pipeline.catalog.search import SearchResult
from pipeline.config import RunConfig
from pipeline.cube.cubes import CubeFacts, Cubes
from pipeline.security import redact

if TYPE_CHECKING:
    from pipeline.fuse.engine import FuseOutcome
    from pipeline.fuse.worker import ModelPayload


def run_dir(cfg: RunConfig) -> Path:
    """The run directory of a region: ``<output_root>/work/<region>`` (items, cubes)."""
    return cfg.output_root / "work" / cfg.region.name


def store_url(cfg: RunConfig) -> str:
    """The store location: ``store.path`` if it is a URL, else under ``output_root``."""
    path = cfg.store.path
    return path if "://" in path else str(cfg.output_root / path)


@dataclass(frozen=True)
class Items:
    """The search stage's artefact: fine and coarse STAC items and the API searched."""

    result: SearchResult
    FILE: ClassVar[str] = "items.json"

    def save(self, directory: Path) -> Path:
        """Write ``directory/items.json`` (full item JSON); returns its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.FILE
        # Unsigned hrefs only: links are signed when read (pipeline.catalog.signing). A token
        # in an endpoint URL (or an item link built from it) is masked: this file stays on disk.
        data = redact(
            {
                "url": self.result.url,
                "coarse_url": self.result.coarse_url,
                "fine": [it.to_dict(transform_hrefs=False) for it in self.result.fine],
                "coarse": [it.to_dict(transform_hrefs=False) for it in self.result.coarse],
            }
        )
        path.write_text(json.dumps(data))
        return path

    @classmethod
    def load(cls, path: Path) -> Items:
        """The items of an ``items.json`` written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        found = {k: [pystac.Item.from_dict(d) for d in data[k]] for k in ("fine", "coarse")}
        result = SearchResult(
            fine=found["fine"],
            coarse=found["coarse"],
            url=data["url"],
            coarse_url=data.get("coarse_url"),
        )
        return cls(result)


@dataclass(frozen=True)
class CubeSet:
    """The cubes stage's artefact: lazy cubes on one grid, with the items they came from.

    ``items_path`` is where the items are saved (set by :meth:`save` / :meth:`load`);
    the cubes are rebuilt from them and their :class:`CubeFacts` without a full read.
    """

    items: Items
    cubes: Cubes
    items_path: Path | None = None
    FILE: ClassVar[str] = "cubes.json"

    def save(self, directory: Path) -> Path:
        """Write ``directory/cubes.json`` (and the items beside it if not saved yet)."""
        items_path = self.items_path or self.items.save(directory)
        path = directory / self.FILE
        cubes = self.cubes
        summary = {
            "items": str(Path(items_path).absolute()),
            "pairs": [p.date.isoformat() for p in cubes.pairs],
            "fine_ids": list(cubes.fine_ids),
            "coarse_ids": list(cubes.coarse_ids),
            "shape": list(cubes.fine.shape),
            **CubeFacts.of(cubes).to_dict(),
        }
        path.write_text(json.dumps(summary, indent=1))
        return path

    @classmethod
    def load(cls, path: Path, cfg: RunConfig) -> CubeSet:
        """The cubes of a ``cubes.json``, rebuilt under ``cfg`` from their items and facts."""
        from pipeline.stages.chain import build_cubes

        data = json.loads(Path(path).read_text())
        items_path = Path(data["items"])
        items = Items.load(items_path)
        cubes = build_cubes(cfg, items.result, facts=CubeFacts.from_dict(data))
        return cls(items, cubes, items_path)


@dataclass(frozen=True)
class TrainedModel:
    """The model stage's artefact: a saved model directory (trained, selected or given).

    ``selection`` is the ``selection.json`` of a selected model (table, summary,
    choice, rule), None otherwise.
    """

    directory: Path
    payload: ModelPayload
    selection: dict[str, Any] | None = None

    @classmethod
    def load(cls, directory: Path) -> TrainedModel:
        """The model saved in ``directory`` (``config.json`` + ``weights.safetensors``)."""
        from pipeline.fuse.worker import ModelPayload
        from pipeline.train import read_selection

        directory = Path(directory)
        return cls(directory, ModelPayload.from_dir(directory), read_selection(directory))

    def name(self, cfg: RunConfig) -> str:
        """The registry name of the model: the selected one, else ``model.name``."""
        return self.selection["choice"] if self.selection is not None else cfg.model.name


@dataclass(frozen=True)
class FusedStore:
    """The fuse stage's artefact: the Zarr store at ``url`` and what this run did to it."""

    url: str
    outcome: FuseOutcome | None = None

    @classmethod
    def load(cls, url: str) -> FusedStore:
        """The store at ``url`` (no outcome: it was fused by another process)."""
        return cls(url)
