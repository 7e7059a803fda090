"""Named kill points in the store writer, for the deterministic SIGKILL trials.

A run started with ``STF_FAULT_KILL=POINT[:N]`` in its environment SIGKILLs its
own process group the N-th time (default: the first) a process of the run
reaches ``POINT``. The trials start ``stf run`` in a session of its own, so the
group is that run and the Dask workers it spawned: the whole run dies at one
exactly known point, whatever the speed of the machine. Without the variable
:func:`kill_point` is a dictionary lookup and nothing else.

Points, in the order a run passes them (:data:`POINTS`):

* ``template-begin``: lock held, nothing of a new store written yet;
* ``template-arrays``: every array of a new template written, metadata not
  consolidated (a reader sees no store; the resume redoes the template);
* ``template-done``: template consolidated, no block written;
* ``extend-resized``: arrays grown to a longer time axis, metadata not consolidated;
* ``block-values``: one block's values written, ``quality`` and commit not;
* ``block-quality``: values and ``quality`` written, commit (``block_done``) not;
* ``block-committed``: a block committed;
* ``finalize``: every block committed, provenance and metadata not yet written.

Counts are per process: ``block-values:2`` fires in the first worker that
writes its second block.
"""

from __future__ import annotations

import os
import signal

#: Environment variable naming the kill point, ``POINT`` or ``POINT:N``.
ENV = "STF_FAULT_KILL"

POINTS: tuple[str, ...] = (
    "template-begin",
    "template-arrays",
    "template-done",
    "extend-resized",
    "block-values",
    "block-quality",
    "block-committed",
    "finalize",
)

_reached: dict[str, int] = {}


def kill_point(name: str) -> None:
    """SIGKILL this process group if ``STF_FAULT_KILL`` names ``name`` (and its count is due).

    Parameters
    ----------
    name : one of :data:`POINTS`.
    """
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(nth or 1):
        # the group, not the pid: a run's Dask workers die with it, as on a lost machine
        os.killpg(os.getpgrp(), signal.SIGKILL)
