"""Logging of the library and the ``stf`` command: levels, handlers, library warnings.

The library logs through ``logging`` (``pipeline.*`` loggers) and never configures
it; :func:`configure_logging` is called once by the command line (or a flow):

* stdout: the stage lines of a run (``pipeline.run``: ``[fuse] ...``), the
  program's own output that scripts and tests follow; hidden by ``--quiet``;
* stderr: everything else, ``WARNING`` with ``--quiet``, ``INFO`` by default,
  ``DEBUG`` with ``--verbose``; progress lines are left to the bar when stderr
  is a terminal;
* ``--log-file PATH``: everything from ``INFO`` (``DEBUG`` with ``--verbose``),
  timestamped, progress as periodic plain lines (:mod:`pipeline.progress`);
* Python warnings from libraries (rasterio, zarr, dask, ...) are routed into the
  log (``py.warnings``) instead of being printed raw: shown on stderr only with
  ``--verbose``, always kept in the log file, each record one line.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

#: Logger of a run's stage lines, written to stdout.
STAGES = "pipeline.run"

#: Longest message written as one log line; longer ones are cut (a log stays greppable).
MAX_LINE = 300


class _OneLine(logging.Formatter):
    """Fold newlines and cut overlong messages: one record, one readable line."""

    def format(self, record: logging.LogRecord) -> str:
        text = " | ".join(part.strip() for part in super().format(record).splitlines() if part)
        return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


class _Stages(logging.Filter):
    """Pass only (``keep=True``) or all but (``keep=False``) a run's stage lines."""

    def __init__(self, keep: bool) -> None:
        super().__init__()
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(STAGES) == self.keep


class _NotProgress(logging.Filter):
    """Drop progress lines (a bar shows them) from a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("pipeline.progress")


class _NotWarnings(logging.Filter):
    """Drop captured library warnings from the terminal unless verbose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "py.warnings"


class _LibraryInfo(logging.Filter):
    """Keep other libraries' records only from WARNING up (distributed logs every
    worker start and connection at INFO on its own loggers' levels)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name.startswith("pipeline") or record.name == "py.warnings"
        return ours or record.levelno >= logging.WARNING


def configure_logging(verbosity: int = 0, log_file: str | Path | None = None) -> None:
    """Set up ``pipeline`` logging for the command line.

    Parameters
    ----------
    verbosity : -1 quiet (warnings and errors only, no bars), 0 normal, 1 verbose (debug).
    log_file : also write the log here (appended; folders created).
    """
    from pipeline.progress import bars_enabled

    if verbosity < 0:
        os.environ["STF_NO_BARS"] = "1"  # read by pipeline.progress, also in subprocesses
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_stf", False):
            root.removeHandler(handler)
    stages = logging.StreamHandler(sys.stdout)
    stages.setLevel(level)
    stages.setFormatter(_OneLine("%(message)s"))
    stages.addFilter(_Stages(keep=True))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(_OneLine("%(message)s"))
    console.addFilter(_Stages(keep=False))
    if bars_enabled():
        console.addFilter(_NotProgress())
    if verbosity < 1:
        console.addFilter(_NotWarnings())
    handlers: list[logging.Handler] = [stages, console]
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path, encoding="utf-8")
        to_file.setLevel(min(level, logging.INFO))
        to_file.setFormatter(_OneLine("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
    for handler in handlers:
        if verbosity < 1:
            handler.addFilter(_LibraryInfo())
        handler._stf = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # other libraries log at INFO freely (dask, distributed, httpx...): only their warnings
    root.setLevel(logging.WARNING)
    logging.getLogger("pipeline").setLevel(min(h.level for h in handlers))
    logging.captureWarnings(True)


def reset_logging() -> None:
    """Undo :func:`configure_logging`: close its handlers, stop capturing warnings."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_stf", False):
            root.removeHandler(handler)
            handler.close()
    logging.captureWarnings(False)
    os.environ.pop("STF_NO_BARS", None)
