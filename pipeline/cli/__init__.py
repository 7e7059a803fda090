"""The ``stf`` command line. Each sub-command lives in its own module of this package.

Commands import heavy libraries inside their bodies so ``stf --help`` stays fast.
Every :class:`pipeline.errors.StfError` becomes one line on stderr and its exit code.

Global options, before the command: ``--version``, ``-q/--quiet`` (warnings and
errors only, no progress bars), ``-v/--verbose`` (debug, library warnings shown),
``--log-file PATH`` (the whole log with timestamps; progress as plain lines).
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
    "pipeline.cli.init_cmd",
    "pipeline.cli.run_cmd",
    "pipeline.cli.products_cmd",
    "pipeline.cli.select_cmd",
)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


GLOBAL_HELP = (
    "global options (before the command): --version, -q/--quiet, -v/--verbose, --log-file PATH"
)


app.info.epilog = GLOBAL_HELP


def _global_options(argv: list[str]) -> tuple[int, str | None, bool, list[str]]:
    """Split the global options off the front of ``argv``: (verbosity, log file, version, rest)."""
    verbosity, log_file, version, i = 0, None, False, 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--version":
            version = True
        elif arg in ("-q", "--quiet"):
            verbosity = -1
        elif arg in ("-v", "--verbose"):
            verbosity = 1
        elif arg == "--log-file" and i + 1 < len(argv):
            log_file, i = argv[i + 1], i + 1
        elif arg.startswith("--log-file="):
            log_file = arg.split("=", 1)[1]
        else:
            break  # --help and the like belong to the app
        i += 1
    return verbosity, log_file, version, argv[i:]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``stf``: global options, logging, then the app (:func:`_run_app`)."""
    verbosity, log_file, version, argv = _global_options(
        list(sys.argv[1:] if argv is None else argv)
    )
    if version:
        import pipeline

        print(f"stf {pipeline.__version__}")
        return 0
    from pipeline.logs import configure_logging, reset_logging

    configure_logging(verbosity, log_file)
    try:
        return _run_app(argv)
    finally:  # flush and close the log file; leave an embedding process as it was
        reset_logging()


def _run_app(argv: list[str]) -> int:
    """Run the Typer app, turning StfError into one line + exit code."""
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
