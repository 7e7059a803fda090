"""One writer per store: a lock object next to the store, with stale-lock recovery.

The lock is ``<store>.lock`` (a sibling, never inside the Zarr hierarchy),
created atomically and holding the owner's host, pid and start time:

* on a local path with ``O_CREAT | O_EXCL``;
* on an object store (``s3://``, ``memory://``, ...) with a conditional put
  (``If-None-Match: *`` on S3, through fsspec's ``pipe_file(mode="create")``):
  of two runs racing for a store the service lets exactly one create the lock.

A second run on the same store refuses (StoreError, exit 4). A lock left by a
killed run is *stale* when its owner is on this host and its pid is gone; it
is then taken over. A lock from another host is never broken automatically
(we cannot see that process): the message says which file or object to delete.
"""

from __future__ import annotations

import contextlib
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


class _LocalFile:
    """The lock as a file: exclusive create with ``O_CREAT | O_EXCL``."""

    def __init__(self, url: str) -> None:
        self.path = local_path(url).with_name(local_path(url).name + ".lock")
        self.name = str(self.path)

    def prepare(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store directory {self.path.parent}: {exc.strerror}; "
                "choose a writable store.path or output_root"
            ) from None

    def create(self, body: str) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreError(
                f"cannot write the lock {self.path}: {exc.strerror}; choose a writable store path"
            ) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        return True

    def read(self) -> str | None:
        try:
            return self.path.read_text()
        except OSError:
            return None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class _ObjectFile:
    """The lock as an object: exclusive create by a conditional put (``If-None-Match: *``)."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.name = url.rstrip("/") + ".lock"
        self.fs, self.path = fsspec.core.url_to_fs(self.name)

    def prepare(self) -> None:
        """Nothing to create: object stores have no directories."""

    def create(self, body: str) -> bool:
        try:
            self.fs.pipe_file(self.path, body.encode(), mode="create")
        except FileExistsError:
            return False
        except OSError as exc:
            # some services answer a failed precondition without naming it: a lock
            # that now exists is someone else's; anything else is an unwritable store
            if self.read() is not None:
                return False
            raise StoreError(
                f"cannot write the lock {self.name}: {exc}; check the bucket, its "
                "permissions and the AWS_*/credential environment"
            ) from None
        return True

    def read(self) -> str | None:
        try:
            return bytes(self.fs.cat_file(self.path)).decode()
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path)


class StoreLock:
    """Context manager holding ``<store>.lock`` for the duration of a run.

    Parameters
    ----------
    url : the store path or fsspec URL; its lock is the sibling ``<url>.lock``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._file = _LocalFile(url) if is_local(url) else _ObjectFile(url)
        self.path = self._file.name
        self._held = False

    def acquire(self) -> None:
        """Take the lock, recovering a stale one once; StoreError if another run holds it."""
        self._file.prepare()
        owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        for _attempt in range(2):
            if self._file.create(json.dumps(owner)):
                self._held = True
                return
            if not self._remove_if_stale():
                break
        found = self._read_owner()
        raise StoreError(
            f"store {self.url} is locked by pid {found.get('pid')} on {found.get('host')} "
            f"(since {found.get('since')}); wait for that run or delete {self.path} if it is dead"
        )

    def _read_owner(self) -> dict[str, object]:
        try:
            return dict(json.loads(self._file.read() or "{}"))
        except ValueError:
            return {}

    def _remove_if_stale(self) -> bool:
        owner = self._read_owner()
        pid = owner.get("pid")
        if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or _pid_alive(pid):
            return False
        self._file.remove()
        return True

    def release(self) -> None:
        """Remove the lock if this object holds it."""
        if self._held:
            self._file.remove()
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
