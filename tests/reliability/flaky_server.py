"""A flaky asset server on 127.0.0.1: files under a root over HTTP/1.1 with Range requests.

A seeded share of requests fails the way blob stores fail in production:
a 5xx status, a stall before the answer, a connection reset before any byte,
or a response cut short after its headers promised the whole body. Paths in
``missing`` always answer 404 (a permanently lost asset). Every request and
fault is counted, so a test can show that faults really happened.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.local_http import serve_local

#: Fault kinds a request can meet; "ok" means none.
KINDS = ("500", "502", "503", "stall", "reset", "truncate")


@dataclass
class FaultPlan:
    """Which requests fail, and how (decisions drawn from one seeded generator).

    Attributes
    ----------
    rate : share of requests (in [0, 1]) that meet a transient fault.
    seed : seed of the fault draws.
    kinds : fault kinds drawn uniformly among the faulty requests.
    missing : URL paths (``/data/...``) that always answer 404.
    stall_s : how long a stalled request waits before answering normally.
    """

    rate: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    missing: frozenset[str] = frozenset()
    stall_s: float = 1.5
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def decide(self, path: str) -> str:
        """The fate of one request for ``path``: "missing", a fault kind, or "ok"."""
        with self._lock:
            if path in self.missing:
                fate = "missing"
            elif self._rng.random() < self.rate:
                fate = self._rng.choice(self.kinds)
            else:
                fate = "ok"
            self.counts[fate] += 1
            return fate


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) of a ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` header."""
    if not header or not header.startswith("bytes="):
        return None
    first, _, last = header.removeprefix("bytes=").split(",")[0].strip().partition("-")
    if not first:
        return max(0, size - int(last)), size - 1
    return int(first), min(size - 1, int(last)) if last else size - 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as GDAL/curl expect of a blob store
    root: Path
    plan: FaultPlan

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        target = (self.root / path.lstrip("/")).resolve()
        fate = self.plan.decide(path)
        if fate == "missing" or not target.is_file() or not target.is_relative_to(self.root):
            self._status(404)
            return
        if fate in ("500", "502", "503"):
            self._status(int(fate))
            return
        if fate == "reset":
            self._reset()
            return
        if fate == "stall":
            time.sleep(self.plan.stall_s)
        data = target.read_bytes()
        span = _byte_range(self.headers.get("Range"), len(data))
        chunk = data if span is None else data[span[0] : span[1] + 1]
        self.send_response(200 if span is None else 206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(chunk)))
        if span is not None:
            self.send_header("Content-Range", f"bytes {span[0]}-{span[1]}/{len(data)}")
        self.end_headers()
        if not body:
            return
        if fate == "truncate" and len(chunk) > 1:
            self.wfile.write(chunk[: len(chunk) // 2])
            self._reset()
            return
        self.wfile.write(chunk)

    def _status(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), as a crashed proxy does."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # before socketserver's FIN: the peer sees a reset
        self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@contextmanager
def serve_flaky(root: Path, plan: FaultPlan) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (free port) with ``plan``'s faults; yield the base URL."""
    handler = type("FlakyAssets", (_Handler,), {"root": Path(root).resolve(), "plan": plan})
    with serve_local(handler) as url:
        yield url
