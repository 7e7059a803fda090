"""Prefect deployments built from the region files: one scheduled ``regional-run`` and
one unscheduled ``backfill`` per ``flows/regions/*.yaml``.

    python -m flows.deployments            # list what would be deployed (no server needed)
    python -m flows.deployments --apply    # register them (PREFECT_API_URL; image: $STF_IMAGE)

Flow runs execute as Kubernetes Jobs of the work pool named in each region's
``schedule.work_pool`` (``infra/k8s``), in the image ``$STF_IMAGE`` whose working
directory holds ``flows/``; entrypoints and region files are relative to it.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment, deploy
from prefect.schedules import Cron

from flows.backfill import backfill
from flows.regional_run import regional_run
from flows.regions import REGIONS_DIR, Region, load_region, region_files

#: The repository root: the working directory of the images (WORKDIR /opt/stf).
ROOT = Path(__file__).resolve().parents[1]

#: Kubernetes settings of the flow-run Jobs (infra/k8s: namespace and service account).
K8S_JOB = {"namespace": "stf", "service_account_name": "stf-runner"}


def _relative(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def _common(region: Region) -> dict[str, Any]:
    return {
        "work_pool_name": region.schedule.work_pool,
        "job_variables": dict(K8S_JOB),
        "tags": ["stf", region.name],
    }


def region_deployments(region: Region) -> list[RunnerDeployment]:
    """The scheduled run and the backfill deployment of one region."""
    region_file = _relative(region.path)
    cron = Cron(region.schedule.cron, timezone=region.schedule.timezone)
    scheduled = regional_run.to_deployment(
        name=region.name,
        schedule=cron,
        paused=not region.schedule.active,
        parameters={"region_file": region_file},
        description=f"Fuse new days of {region.name} ({region_file}) on {region.schedule.cron}.",
        **_common(region),
    )
    season = backfill.to_deployment(
        name=f"{region.name}-backfill",
        parameters={"region_file": region_file},
        description=f"Fuse a past season of {region.name}: give start and end.",
        **_common(region),
    )
    return [scheduled, season]


def build_deployments(directory: Path = REGIONS_DIR) -> list[RunnerDeployment]:
    """Deployments of every region file in ``directory`` (built offline, nothing registered)."""
    return [d for path in region_files(directory) for d in region_deployments(load_region(path))]


def apply(deployments: list[RunnerDeployment], image: str) -> None:
    """Register ``deployments`` with the Prefect API, grouped by work pool, using ``image``."""
    by_pool: dict[str, list[RunnerDeployment]] = defaultdict(list)
    for deployment in deployments:
        by_pool[str(deployment.work_pool_name)].append(deployment)
    for pool, group in by_pool.items():
        deploy(*group, work_pool_name=pool, image=image, build=False, push=False)


def main() -> None:
    """List (default) or register (``--apply``) the deployments of ``flows/regions``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--apply", action="store_true", help="register with PREFECT_API_URL")
    parser.add_argument("--regions", type=Path, default=REGIONS_DIR)
    args = parser.parse_args()
    deployments = build_deployments(args.regions)
    for d in deployments:
        crons = [getattr(s.schedule, "cron", "") for s in d.schedules or []]
        print(f"{d.flow_name}/{d.name}  pool={d.work_pool_name}  cron={crons}  {d.parameters}")
    if args.apply:
        apply(deployments, image=os.environ["STF_IMAGE"])


if __name__ == "__main__":
    main()
