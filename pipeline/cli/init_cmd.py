"""``stf init [FILE]``: write a commented run-configuration template to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import app


@app.command("init")
def init_cmd(
    path: Annotated[Path, typer.Argument(help="configuration file to write")] = Path("stf.yaml"),
    force: Annotated[bool, typer.Option("--force", help="replace an existing file")] = False,
) -> None:
    """Write a commented configuration template (every field, at its default)."""
    from pipeline.configdoc import config_template
    from pipeline.errors import InputError

    if path.exists() and not force:
        raise InputError(f"{path} exists; choose another file name or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_template())
    typer.echo(f"wrote {path}: set region and time, then `stf run {path}`")
