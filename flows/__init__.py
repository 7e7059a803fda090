"""Prefect flows and deployments: wiring of ``pipeline`` steps, passing configs and paths only.

Import the flows from their modules (``flows.regional_run``, ``flows.backfill``);
this package imports nothing at import time so ``pipeline`` tests never load Prefect.
"""
