"""Serve a local STAC catalog as a real STAC API on loopback with ``rustac serve``.

The in-memory backend is used: the DuckDB backend tries to download extensions and
hangs offline. rustac supports collections, bbox, datetime, ids, intersects and paging,
not ``filter``/``query``/``sortby``. Search with POST (pystac-client's default): rustac 0.9
answers GET ``/search`` with ``collections`` or ``bbox`` query parameters with a 500.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pipeline.errors import ServiceError

#: Seconds to wait for ``/collections`` to answer before giving up.
STARTUP_TIMEOUT_S = 30.0


def rustac_executable() -> str:
    """Path of the ``rustac`` console script: next to the running Python, else on PATH."""
    beside = Path(sys.executable).with_name("rustac")
    if beside.exists():
        return str(beside)
    found = shutil.which("rustac")
    if found is None:
        raise ServiceError(
            "rustac not found next to the Python interpreter or on PATH; pip install rustac"
        )
    return found


def catalog_hrefs(stac_dir: Path) -> list[str]:
    """Files to load, relative to ``stac_dir``: all collections first, then their items."""
    collections = sorted(p.parent for p in stac_dir.glob("*/collection.json"))
    if not collections:
        raise ServiceError(
            f"no <collection>/collection.json under {stac_dir}; build the demo world first"
        )
    hrefs = [str(c.relative_to(stac_dir) / "collection.json") for c in collections]
    hrefs += [
        str(c.relative_to(stac_dir) / "items.json")
        for c in collections
        if (c / "items.json").exists()
    ]
    return hrefs


@contextmanager
def serve_catalog(stac_dir: Path, port: int | None = None) -> Iterator[str]:
    """Run ``rustac serve`` on 127.0.0.1 over the catalog in ``stac_dir``; yield the API root URL.

    Parameters
    ----------
    stac_dir : directory of ``<collection>/collection.json`` + ``<collection>/items.json``
        (as written by :func:`pipeline.synth.build_world`).
    port : TCP port; a free one is chosen when None.

    Raises
    ------
    ServiceError : rustac is missing, exits early, or does not answer within 30 s.
    """
    stac_dir = Path(stac_dir).resolve()
    hrefs = catalog_hrefs(stac_dir)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [rustac_executable(), "serve", "--addr", f"127.0.0.1:{port}", *hrefs]
    # A file, not a pipe, takes rustac's log: an unread pipe would fill up and stall the server.
    with tempfile.TemporaryFile(mode="w+") as log:
        # Relative hrefs resolve against the working directory.
        proc = subprocess.Popen(cmd, cwd=stac_dir, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            _wait_ready(proc, url, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[str], url: str, log: IO[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().strip().splitlines()
            cause = err[-1] if err else f"exit code {proc.returncode}"
            raise ServiceError(
                f"rustac serve failed to start ({cause}); check the catalog files and the port"
            )
        try:
            with urllib.request.urlopen(f"{url}/collections", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise ServiceError(
        f"rustac serve did not answer at {url} within {STARTUP_TIMEOUT_S:.0f} s; is the port free?"
    )
