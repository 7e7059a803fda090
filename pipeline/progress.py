"""One progress system: a bar in a terminal, periodic plain lines everywhere else.

:class:`ProgressBar` takes the subset of tqdm's interface the library uses
(``desc``, ``total``, ``unit``, ``disable``; ``update``, ``set_postfix``,
iteration, context manager), so call sites change only their import. Where it
renders depends on where the output goes, decided once per bar:

* stderr is a terminal: a rich bar on stderr (redrawn in place), and the same
  periodic lines go to the ``pipeline.progress`` logger for a ``--log-file``;
* otherwise (CI, ``make demo | tee``, a scheduler's log): no bar, only those
  plain lines, at most one every :data:`INTERVAL_S` seconds plus one when the
  bar closes, so a log has no carriage-return redraws and no line longer than
  a few dozen characters.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

LOGGER = logging.getLogger("pipeline.progress")

#: Seconds between two plain progress lines of one bar (``STF_PROGRESS_INTERVAL`` overrides).
INTERVAL_S = float(os.environ.get("STF_PROGRESS_INTERVAL", "15"))


def bars_enabled() -> bool:
    """Whether bars are drawn: stderr is a terminal and ``stf --quiet`` did not turn them off."""
    if os.environ.get("STF_NO_BARS"):
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class ProgressBar:
    """Progress of one loop or task set (tqdm-compatible subset).

    Parameters
    ----------
    iterable : optional iterable to wrap (``for x in ProgressBar(range(n))``).
    desc : what progresses, e.g. ``"fuse blocks"``.
    total : number of steps (default ``len(iterable)`` when it has one).
    unit : name of one step, e.g. ``"block"``.
    disable : no output at all (the library's ``progress=False``).
    """

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        desc: str = "",
        total: int | None = None,
        unit: str = "it",
        disable: bool = False,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.desc, self.unit, self.disable = iterable, desc, unit, disable
        self.total, self.n = total, 0
        self.postfix: dict[str, str] = {}
        self._start = self._last = time.monotonic()
        self._closed = False
        self._rich: Any = None
        self._task: Any = None
        if not disable and bars_enabled():
            self._open_rich()

    def _open_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._rich = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[postfix]}"),
            console=Console(stderr=True),
        )
        self._rich.start()
        self._task = self._rich.add_task(self.desc, total=self.total, postfix="")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable or ():
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps."""
        self.n += n
        if self.disable:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self.n, total=self.total)
        now = time.monotonic()
        if now - self._last >= INTERVAL_S:
            self._last = now
            LOGGER.info(self._line())

    def set_postfix(self, **values: Any) -> None:
        """Show ``key=value`` pairs after the count (e.g. the current loss)."""
        self.postfix = {k: str(v) for k, v in values.items()}
        if self._rich is not None:
            self._rich.update(self._task, postfix=self._postfix_text())

    def close(self) -> None:
        """Stop the bar and log the final line (once)."""
        if self._closed:
            return
        self._closed = True
        if self._rich is not None:
            self._rich.stop()
        if not self.disable:
            LOGGER.info(self._line(final=True))

    def _postfix_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.postfix.items())

    def _line(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self._start
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        per_s = self.n / elapsed if elapsed > 0 else 0.0
        if not self.n or not per_s:
            rate = ""
        elif per_s >= 0.1:
            rate = f", {per_s:.1f} {self.unit}/s"
        else:  # slow steps (a fuse block, an epoch): per minute reads better than 0.0/s
            rate = f", {per_s * 60:.2g} {self.unit}/min"
        state = "done" if final else "running"
        extra = f" {self._postfix_text()}" if self.postfix else ""
        return f"{self.desc}: {count} {self.unit} in {elapsed:.0f} s{rate} ({state}){extra}"


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> ProgressBar:
    """A :class:`ProgressBar` (the library's single entry point for progress)."""
    return ProgressBar(iterable, **kwargs)
