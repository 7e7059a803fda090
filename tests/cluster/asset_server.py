"""The asset host's file server: ``python -m tests.cluster.asset_server ROOT ADDRESS PORT``.

Serves the files under ROOT over HTTP/1.1 with Range requests (what GDAL's ``/vsicurl/``
needs of a blob store), bound to the host's own address on the test cluster's lan. It is
the fault-free case of the reliability tests' server (:mod:`tests.reliability.flaky_server`).
Each request is logged to stdout as ``<client address> <path>``, so a test can tell which
hosts read the scenes.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.reliability.flaky_server import FaultPlan, _Handler


def _log_request(self: BaseHTTPRequestHandler, *args: object) -> None:
    sys.stdout.write(f"{self.client_address[0]} {self.path}\n")
    sys.stdout.flush()


def main(argv: list[str]) -> None:
    root, address, port = Path(argv[0]).resolve(), argv[1], int(argv[2])
    members = {"root": root, "plan": FaultPlan(), "log_message": _log_request}
    handler = type("Assets", (_Handler,), members)
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
