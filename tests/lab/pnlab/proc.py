"""Running commands and daemons, and waiting on them, without a shell."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable, Sequence


class LabError(RuntimeError):
    pass


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and done.returncode != 0:
        raise LabError(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.strip()}")
    return done


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start a daemon detached from our session so a Ctrl-C reaches us, and we tear down in order."""
    with open(log, "ab") as out:
        child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True, close_fds=True)
    return child.pid


def alive(pid: int) -> bool:
    """Zombies linger here for seconds, so a process counts as gone once it is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def kill_all(pids: Iterable[int], grace: float = 0.5) -> None:
    pending = {p for p in pids if p > 1 and p not in (os.getpid(), os.getppid())}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in pending:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait
        while pending and time.monotonic() < deadline:
            pending = {p for p in pending if alive(p)}
            if pending:
                time.sleep(0.02)
        if not pending:
            return


def _address(hex_addr: str) -> str:
    """/proc/net/tcp{,6} local address (host byte order, in 32-bit words) -> its text form."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def _listening(pid: int) -> set[tuple[str, int]]:
    """Read the listening sockets of pid's network namespace straight from /proc: each as (family, port) and as
    (address, port), so a caller can wait for a family or for one listener among several on the same port."""
    found: set[tuple[str, int]] = set()
    for table, family in (("tcp", "v4"), ("tcp6", "v6")):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                hex_addr, hex_port = fields[1].rsplit(":", 1)
                port = int(hex_port, 16)
                found |= {(family, port), (_address(hex_addr), port)}
    return found


def wait_listening(pid_in_ns: int, ports: Iterable[tuple[str, int]], timeout: float, what: str) -> None:
    """Until every (family 'v4'/'v6' or address, port) listens in pid's network namespace."""
    wanted = set(ports)
    deadline = time.monotonic() + timeout
    while True:
        missing = wanted - _listening(pid_in_ns)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not listening on {sorted(missing)} after {timeout}s")
        time.sleep(0.03)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(0.02)


def netns_pid(name: str) -> int:
    """Any process in a named netns lets /proc show that namespace's sockets; the lab keeps a sleeper in each."""
    pids = run(["ip", "netns", "pids", name]).stdout.split()
    if not pids:
        raise LabError(f"no process in {name}")
    return int(pids[0])
