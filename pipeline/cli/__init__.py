"""The ``stf`` command line. Each sub-command lives in its own module of this package.

Commands import heavy libraries inside their bodies so ``stf --help`` stays fast.
Every :class:`pipeline.errors.StfError` becomes one line on stderr and its exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from pipeline.cli.app import app

#: Modules that add commands to :data:`app` when imported (one per concern).
COMMAND_MODULES = (
    "pipeline.cli.catalog_cmd",
    "pipeline.cli.cube_cmd",
    "pipeline.cli.evaluate_cmd",
    "pipeline.cli.info_cmd",
    "pipeline.cli.run_cmd",
    "pipeline.cli.products_cmd",
    "pipeline.cli.select_cmd",
)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``stf``: run the app, turning StfError into one line + exit code."""
    from pipeline.errors import StfError
    from pipeline.security import redact_text

    _load_commands()
    try:
        app(args=argv, standalone_mode=False)
    except StfError as err:
        print(f"stf: error: {redact_text(err.message)}", file=sys.stderr)
        return err.exit_code
    except SystemExit as exc:  # typer/click exits (usage errors are 2)
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("stf: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors surface as ClickException subclasses
        import click
        import typer

        # typer >= 0.25 raises its vendored click's exceptions (typer.TyperException)
        if isinstance(exc, click.exceptions.ClickException | typer.TyperException) and hasattr(
            exc, "show"
        ):
            exc.show()
            return int(getattr(exc, "exit_code", 2))
        if isinstance(exc, click.exceptions.Abort | typer.Abort):
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())


def entrypoint() -> None:
    """Console-script wrapper: ``sys.exit(main())``."""
    sys.exit(main())
