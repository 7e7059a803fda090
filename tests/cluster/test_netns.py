"""The test cluster's hosts: separate addresses and disks, and a teardown that always happens.

Fast (a few seconds): hosts run only ``python -c`` one-liners. Skipped with the reason
where namespaces cannot be made (not root, no ``ip``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.cluster.netns import Lan, remove_stale, unavailable_reason

REASON = unavailable_reason() if sys.platform == "linux" else "network namespaces are Linux-only"
needs_namespaces = pytest.mark.skipif(REASON is not None, reason=REASON or "")
REPO = Path(__file__).resolve().parents[2]


def _namespaces(tag: str) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if line.startswith(tag)]


def _links(name: str) -> bool:
    return name in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_without_root_the_reason_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert unavailable_reason() == "network namespaces need root (run the cluster tests as root)"


@needs_namespaces
def test_hosts_have_own_addresses_and_disks_and_go_away(tmp_path: Path) -> None:
    secret = tmp_path / "client"
    secret.mkdir()
    (secret / "run.yaml").write_text("client only")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lan = Lan()
    try:
        server = lan.add_host("srv", tmp_path / "hosts" / "srv", hidden=[secret])
        probe = lan.add_host("probe", tmp_path / "hosts" / "probe", hidden=[secret])
        serve = "import http.server as h; h.test(h.SimpleHTTPRequestHandler, port=8000, bind={!r})"
        serve = serve.format(server.address)
        server.start([sys.executable, "-c", serve], env, tmp_path / "srv.log")
        check = textwrap.dedent(f"""
            import os, time, urllib.request
            for _ in range(100):
                try:
                    urllib.request.urlopen("http://{server.address}:8000/").close()
                    break
                except OSError:
                    time.sleep(0.1)
            print("reached", os.path.exists({str(secret / "run.yaml")!r}), os.listdir("."))
        """)
        done = probe.start([sys.executable, "-c", check], env, tmp_path / "probe.log")
        assert done.wait(timeout=60) == 0, (tmp_path / "probe.log").read_text()
        # served across the bridge; the client's file is invisible; its own disk starts empty
        assert (tmp_path / "probe.log").read_text().split() == ["reached", "False", "[]"]
        assert (secret / "run.yaml").exists()  # hidden from hosts, not from the client
    finally:
        lan.close()
    assert _namespaces(lan.tag) == []
    assert not _links(lan.client_link)
    assert all(proc.poll() is not None for host in lan.hosts.values() for proc in host.procs)


@needs_namespaces
def test_a_killed_test_process_leaves_nothing_the_next_one_keeps(tmp_path: Path) -> None:
    # a stand-in for a SIGKILLed pytest: it makes a lan with a host running `sleep`
    owner = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from tests.cluster.netns import Lan
        lan = Lan()
        host = lan.add_host("h", Path({str(tmp_path / "h")!r}))
        proc = host.start(["sleep", "600"], dict(os.environ), Path({str(tmp_path / "h.log")!r}))
        print(lan.tag, proc.pid, flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", owner],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    tag, sleeper = child.stdout.readline().split()
    assert len(_namespaces(tag)) == 2
    child.kill()
    child.wait()
    deadline = time.monotonic() + 10  # PR_SET_PDEATHSIG: the host's process dies with it
    while Path(f"/proc/{sleeper}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{sleeper}").exists()
    left = _namespaces(tag)  # what a SIGKILL leaves: the namespaces (the next run removes them)
    assert set(left) <= set(remove_stale())
    assert _namespaces(tag) == []
    assert not _links(f"{tag}c")
