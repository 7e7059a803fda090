"""A reader that polls a store while it is being written and checks every committed block.

It reads the way every reader of the store does, through the consolidated
metadata: the store must appear with every array of the clean run or not at
all (a half-written template is a violation). A block is *committed* when
``block_done`` marks its days (1 final, 2 provisional). Whenever the reader
sees a committed block, that block's values must already equal the clean
run's, in every variable: a commit written before its data, or a torn chunk,
would show up here as a violation. :meth:`StoreWatch.stop` polls once more,
so a run too quick for the poll period is still checked.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import zarr

from tests.reliability.conftest import store_arrays

#: Store variables checked under a commit (``block_done`` itself and coordinates excluded).
_SKIP = {"block_done", "time", "x", "y", "spatial_ref"}


@dataclass
class StoreWatch:
    """Polls ``url`` every ``period_s`` from a thread until :meth:`stop`.

    Attributes
    ----------
    polls : reads of ``block_done`` that succeeded.
    committed_seen : committed (day-window, block) cells checked against the clean run.
    violations : descriptions of committed blocks whose data differed.
    """

    url: str
    reference: str
    period_s: float = 0.1
    polls: int = 0
    committed_seen: int = 0
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._want = store_arrays(self.reference)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> StoreWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=30)
        self._poll()

    def _loop(self) -> None:
        while not self._done.wait(self.period_s):
            self._poll()

    def _poll(self) -> None:
        group = self._open()
        if group is not None:
            self._check(group)

    def _open(self) -> zarr.Group | None:
        try:  # only a published (consolidated) store is visible to readers
            group = zarr.open_group(self.url, mode="r", use_consolidated=True)
        except (KeyError, FileNotFoundError, ValueError, OSError):
            return None
        missing = sorted(set(self._want) - set(group.array_keys()))
        if missing:
            self.violations.append(f"template visible without {', '.join(missing)}")
            return None
        return group

    def _check(self, group: zarr.Group) -> None:
        try:  # a partial template being removed by the resume: gone for this poll
            done = np.asarray(group["block_done"][...])
        except (KeyError, FileNotFoundError, OSError):
            return
        self.polls += 1
        cells = np.nonzero(done)
        self.committed_seen += len(cells[0])
        # zarr decodes whole chunks: one read per (time chunk, block) serves all its
        # committed days (a read per day decoded the same chunk once per day)
        ct, cy, cx = group["red"].chunks
        days_of: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        for t, by, bx in zip(*(c.tolist() for c in cells), strict=True):
            days_of[(t // ct, by, bx)].append(t)
        for (_, by, bx), days in days_of.items():
            self._check_block(group, by, bx, days, (cy, cx))

    def _check_block(
        self, group: zarr.Group, by: int, bx: int, days: list[int], chunk: tuple[int, int]
    ) -> None:
        """Block ``(by, bx)`` on its committed ``days`` (one time chunk) against the clean run."""
        (cy, cx), t0, t1 = chunk, min(days), max(days) + 1
        space = (slice(by * cy, (by + 1) * cy), slice(bx * cx, (bx + 1) * cx))
        for name, want in self._want.items():
            if name in _SKIP:
                continue
            got = np.asarray(group[name][(slice(t0, t1), *space)])
            for t in days:
                if got[t - t0].tobytes() != want[(t, *space)].tobytes():
                    self.violations.append(f"{name} day {t} block ({by}, {bx})")
