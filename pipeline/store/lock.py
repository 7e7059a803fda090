"""One writer per store: a lock file next to the store, with stale-lock recovery.

The lock is ``<store>.lock`` (a sibling, never inside the Zarr hierarchy),
created atomically (``O_CREAT | O_EXCL``) and holding the owner's host, pid and
start time. A second run on the same store refuses (StoreError, exit 4). A lock
left by a killed run is *stale* when its owner is on this host and its pid is
gone; it is then taken over. A lock from another host is never broken
automatically (we cannot see that process): the message says which file to
delete. Only local paths are locked; fsspec URLs (object stores) have no atomic
create, so a run on them relies on the orchestrator running one writer.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from pipeline.errors import StoreError


def is_local(url: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> Path:
    """The filesystem path of a local store URL."""
    return Path(url.removeprefix("file://")).absolute()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class StoreLock:
    """Context manager holding ``<store>.lock`` for the duration of a run.

    Parameters
    ----------
    url : the store path or URL (non-local URLs are not locked).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = (
            local_path(url).with_name(local_path(url).name + ".lock") if is_local(url) else None
        )
        self._held = False

    def acquire(self) -> None:
        """Take the lock, recovering a stale one once; StoreError if another run holds it."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store directory {self.path.parent}: {exc.strerror}; "
                "choose a writable store.path or output_root"
            ) from None
        for _attempt in range(2):
            if self._try_create():
                self._held = True
                return
            if not self._remove_if_stale():
                break
        owner = self._read_owner()
        raise StoreError(
            f"store {self.url} is locked by pid {owner.get('pid')} on {owner.get('host')} "
            f"(since {owner.get('since')}); wait for that run or delete {self.path} if it is dead"
        )

    def _try_create(self) -> bool:
        assert self.path is not None
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreError(
                f"cannot write the lock {self.path}: {exc.strerror}; choose a writable store path"
            ) from None
        owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        with os.fdopen(fd, "w") as fh:
            json.dump(owner, fh)
        return True

    def _read_owner(self) -> dict[str, object]:
        assert self.path is not None
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def _remove_if_stale(self) -> bool:
        owner = self._read_owner()
        pid = owner.get("pid")
        if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or _pid_alive(pid):
            return False
        assert self.path is not None
        self.path.unlink(missing_ok=True)
        return True

    def release(self) -> None:
        """Remove the lock if this object holds it."""
        if self._held and self.path is not None:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
