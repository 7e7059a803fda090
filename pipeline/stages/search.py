"""The search stage: each collection searched at its own endpoint (``demo``: the world served).

``stac.url`` serves both collections unless ``stac.fine`` / ``stac.coarse`` names an
endpoint of its own; an endpoint shared by both roles is opened once (for ``demo``, one
served world). The items keep unsigned hrefs (:mod:`pipeline.catalog.signing`).
"""

from __future__ import annotations

import contextlib

from pipeline.catalog.search import search_items
from pipeline.config import RunConfig
from pipeline.stages.artefacts import Items


def search(cfg: RunConfig) -> Items:
    """STAC search of the run's endpoints over its region and dates.

    Raises
    ------
    InputError
        A collection its endpoint lacks, a signing package missing, nothing found.
    ServiceError
        An endpoint is unreachable or fails after retries.
    """
    from pipeline.demo import open_endpoint

    fine, coarse = cfg.stac.for_role("fine"), cfg.stac.for_role("coarse")
    with contextlib.ExitStack() as stack:
        fine_url = stack.enter_context(open_endpoint(fine))
        coarse_url = (
            fine_url if coarse.url == fine.url else stack.enter_context(open_endpoint(coarse))
        )
        return Items(search_items(cfg, fine_url, coarse_url))
