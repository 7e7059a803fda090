"""Region files: a pipeline run configuration plus a ``schedule:`` block.

A region file is exactly what ``stf run`` reads (parsed by
:func:`pipeline.config.parse_config`, same schema, same errors) with one extra
top-level key::

    schedule:
      cron: "0 7 * * *"        # when Prefect starts a run (5-field cron)
      timezone: Europe/Rome    # IANA zone the cron is read in
      latency_days: 4          # fuse through today - latency (MODIS arrives late)
      work_pool: stf-k8s       # Prefect work pool the deployment runs on
      active: true             # false: deployment registered with the schedule paused

The ``schedule`` block is optional (defaults above, cron included) so any run
config can be run as a flow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from pipeline.config import RunConfig, Spec, parse_config
from pipeline.errors import ConfigError

#: Directory of the region files that become deployments.
REGIONS_DIR = Path(__file__).resolve().parent / "regions"


class ScheduleSpec(Spec):
    """When and where a region runs on schedule."""

    cron: str = Field(default="0 7 * * *", pattern=r"^\S+( \S+){4}$")
    timezone: str = "UTC"
    latency_days: int = Field(default=4, ge=0, le=60)
    work_pool: str = "stf-k8s"
    active: bool = True


@dataclass(frozen=True)
class Region:
    """A parsed region file: its name, run configuration and schedule."""

    path: Path
    config: RunConfig
    schedule: ScheduleSpec

    @property
    def name(self) -> str:
        """The region's name (``region.name`` of the run config)."""
        return self.config.region.name

    def target_end(self, today: dt.date) -> dt.date:
        """Last day a run on ``today`` fuses: the configured end, or today - latency if earlier."""
        return min(self.config.time.end, today - dt.timedelta(days=self.schedule.latency_days))


def load_region(path: str | Path) -> Region:
    """Read a region file (YAML, safe loader) into a :class:`Region`.

    Raises
    ------
    ConfigError : unreadable file, invalid YAML, or an invalid field (one line).
    """
    path = Path(path).resolve()
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config error in {path}: cannot read region file: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {path}: expected a mapping at the top level")
    schedule_data = data.pop("schedule", None) or {}
    try:
        schedule = ScheduleSpec.model_validate(schedule_data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"config error in {path}: schedule.{where}: {first['msg']}") from None
    config = parse_config(data, source=str(path), base_dir=path.parent)
    return Region(path, config, schedule)


def region_files(directory: Path = REGIONS_DIR) -> list[Path]:
    """The region files of ``directory``, sorted by name."""
    return sorted(directory.glob("*.yaml"))
