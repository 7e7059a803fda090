"""The names of the fusion models and where each lives, without importing any of them.

A ground-floor table: configuration validates ``model.name`` against it at the edge,
and :mod:`pipeline.models.registry` builds models from it. Each entry maps a registry
name to ``"module:Class"``; a plug-in model adds itself with :func:`register`.
"""

from __future__ import annotations

import importlib.util

MODELS: dict[str, str] = {
    "naive_fine": "pipeline.models.baselines:NearestFineReference",
    "naive_coarse": "pipeline.models.baselines:CoarseTarget",
    "naive_change": "pipeline.models.baselines:FineRefPlusCoarseChange",
    "smoothed_change": "pipeline.models.baselines:SmoothedChange",
    "smoothed_change_blend": "pipeline.models.baselines:SmoothedChangeBlend",
    "smoothed_change_tblend": "pipeline.models.blend:SmoothedChangeTBlend",
    "starfm": "pipeline.models.starfm:Starfm",
    "resstf": "pipeline.models.resstf:ResStf",
    "resstf_prior": "pipeline.models.resstf_prior:ResStfPrior",
    "edcstfn": "pipeline.models.edcstfn:Edcstfn",
    "ganstfm": "pipeline.models.ganstfm:GanStfm",
    "swinstfm": "pipeline.models.swinstfm:SwinStfm",
    "stfdiff": "pipeline.models.stfdiff:StfDiff",
    "estarfm": "pipeline.models.estarfm:Estarfm",
    "fitfc": "pipeline.models.fitfc:FitFc",
}


def register(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name`` (for plug-in models)."""
    MODELS[name] = target


def available_models() -> list[str]:
    """Names of every registered model whose module exists, sorted.

    ``find_spec`` of a submodule imports its parent package (``pipeline.models``) but not
    the model module itself, so torch stays unimported.
    """
    return sorted(n for n, t in MODELS.items() if importlib.util.find_spec(t.split(":")[0]))
