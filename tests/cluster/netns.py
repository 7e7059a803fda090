"""Separate hosts on one machine: network namespaces on one bridge, each with private disks.

A :class:`Lan` is a network namespace holding a Linux bridge; every :class:`Host` is a
network namespace of its own joined to that bridge by a veth pair, with an address
``10.231.N.k/24``. The test process (the *client*) stays in the machine's namespace and
reaches the hosts through one more veth pair into the bridge (address ``.1``).

Every process of a host runs in a mount namespace of its own in which

- the host's working directory is a fresh tmpfs (its private disk, gone with the host);
- each directory in ``hidden`` (the client's run directory, the demo world's files...)
  is covered by an empty tmpfs, so the host has no view of it.

Teardown is guaranteed as far as a process can guarantee it: :meth:`Lan.close` (called by
the fixtures' ``finally`` and by ``atexit``) kills every process of every host and
deletes the namespaces; host processes carry ``PR_SET_PDEATHSIG=SIGKILL``, so they die
with the test process even when it is SIGKILLed; and :func:`remove_stale` (called before
a new cluster is made) deletes what a killed test process left behind: namespaces
``stfc<pid>-*`` whose ``<pid>`` is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Prefix of every namespace this module makes: ``stfc<owner pid>-<host>``.
PREFIX = "stfc"
_STALE = re.compile(rf"^{PREFIX}(\d+)-")
_PR_SET_PDEATHSIG = 1


def _ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; return stdout (raise with ip's own message when ``check``)."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (one line), or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root (run the cluster tests as root)"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2 / util-linux)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(ns: str) -> None:
    """SIGKILL every process whose network namespace is ``ns``; delete ``ns``."""
    for pid in _ip("netns", "pids", ns, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "delete", ns, check=False)


def _client_link(tag: str) -> str:
    """Name of the client's veth end for the lan ``tag`` (at most 15 characters)."""
    return f"{tag}c"[-15:]


def remove_stale() -> list[str]:
    """Delete the namespaces of test processes that died without tearing down; return them."""
    removed = []
    for line in _ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = _STALE.match(name)
        if match and not _alive(int(match.group(1))):
            _kill_namespace(name)
            _ip("link", "delete", _client_link(f"{PREFIX}{match.group(1)}"), check=False)
            removed.append(name)
    return removed


def _die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGKILL when the test process dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _free_subnet() -> str:
    """A ``10.231.N`` prefix no interface of this machine uses (N from the pid, then up)."""
    used = _ip("-o", "-4", "addr", check=False) + _ip("-4", "route", check=False)
    start = os.getpid() % 250
    for step in range(250):
        prefix = f"10.231.{(start + step) % 250 + 1}"
        if f"{prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.231.N.0/24 subnet for the test cluster")


@dataclass
class Host:
    """One host: a network namespace on the lan, an address, a private working directory.

    Attributes
    ----------
    name : short host name (``scheduler``, ``worker-a``...).
    ns : its network namespace.
    address : its IPv4 address on the lan.
    workdir : its working directory; a private tmpfs in each of its processes.
    hidden : directories its processes cannot see (covered by an empty tmpfs).
    """

    name: str
    ns: str
    address: str
    workdir: Path
    hidden: tuple[Path, ...]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` on this host (its namespace, disk and hidden directories).

        stdout and stderr go to ``log`` (opened by the client, so the host need not see it).
        """
        mounts = [f"mount -t tmpfs -o size=256m stf-{self.name} {shlex.quote(str(self.workdir))}"]
        mounts += [
            f"mount -t tmpfs -o size=1m,ro stf-hidden {shlex.quote(str(d))}" for d in self.hidden
        ]
        script = " && ".join([*mounts, f"cd {shlex.quote(str(self.workdir))}", 'exec "$@"'])
        cmd = ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private"]
        cmd += ["sh", "-c", script, self.name, *argv]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        self.procs.append(proc)
        return proc

    def kill(self) -> None:
        """Take the host off the lan at once: SIGKILL all its processes, delete its namespace."""
        _kill_namespace(self.ns)
        for proc in self.procs:
            proc.wait(timeout=30)


class Lan:
    """A bridge in a namespace of its own, the client's port on it, and the hosts on it."""

    def __init__(self) -> None:
        remove_stale()
        self.tag = f"{PREFIX}{os.getpid()}"
        self.prefix = _free_subnet()
        self.ns = f"{self.tag}-lan"
        self.hosts: dict[str, Host] = {}
        self._closed = False
        atexit.register(self.close)
        _ip("netns", "add", self.ns)
        try:
            self._make_bridge()
        except BaseException:
            self.close()
            raise

    @property
    def client_address(self) -> str:
        """The client's (the test process's) address on the lan."""
        return f"{self.prefix}.1"

    @property
    def client_link(self) -> str:
        """The client's end of its veth pair, in the machine's namespace."""
        return _client_link(self.tag)

    def _make_bridge(self) -> None:
        _ip("-n", self.ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.ns, "link", "set", "br0", "up")
        # the client's port: one end in the machine's namespace, one on the bridge
        client_if = self.client_link
        _ip("link", "add", client_if, "type", "veth", "peer", "name", "client", "netns", self.ns)
        _ip("-n", self.ns, "link", "set", "client", "master", "br0", "up")
        _ip("addr", "add", f"{self.client_address}/24", "dev", client_if)
        _ip("link", "set", client_if, "up")

    def add_host(self, name: str, workdir: Path, hidden: Sequence[Path] = ()) -> Host:
        """Make host ``name`` (address ``.2``, ``.3``... in order of creation) on the bridge."""
        address = f"{self.prefix}.{len(self.hosts) + 2}"
        ns = f"{self.tag}-{name}"
        port = f"p{len(self.hosts)}"
        _ip("netns", "add", ns)
        host = Host(name, ns, address, workdir, tuple(hidden))
        self.hosts[name] = host
        _ip("-n", self.ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", self.ns, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Kill every host's processes and delete every namespace (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            _kill_namespace(host.ns)
            for proc in host.procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        # deleting one end deletes the pair now (a deleted namespace takes it along later)
        _ip("link", "delete", self.client_link, check=False)
        _ip("netns", "delete", self.ns, check=False)
        atexit.unregister(self.close)
