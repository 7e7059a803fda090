"""The asset host's file server: ``python -m tests.cluster.asset_server ROOT ADDRESS PORT``.

Serves the files under ROOT over HTTP/1.1 with Range requests (what GDAL's ``/vsicurl/``
needs of a blob store), bound to the host's own address on the test cluster's lan. It is
the fault-free case of the reliability tests' server (:mod:`tests.reliability.flaky_server`).
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.reliability.flaky_server import FaultPlan, _Handler


def main(argv: list[str]) -> None:
    root, address, port = Path(argv[0]).resolve(), argv[1], int(argv[2])
    handler = type("Assets", (_Handler,), {"root": root, "plan": FaultPlan()})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
