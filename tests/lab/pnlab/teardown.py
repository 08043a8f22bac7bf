"""Removing a lab, or what a crashed one left: everything it made carries the pn- prefix or lives in the state dir."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import state as statefile
from .proc import kill_all, run
from .topology import CONTROLLER_LINK, PREFIX


def lab_namespaces() -> list[str]:
    listing = run(["ip", "netns", "list"], check=False).stdout.split("\n")
    return [line.split()[0] for line in listing if line.startswith(PREFIX)]


def _netns_pids(name: str) -> set[int]:
    return {int(p) for p in run(["ip", "netns", "pids", name], check=False).stdout.split()}


LAB_PROGRAMS = {"ssh", "sshd", "mosquitto", "squid", "dnsmasq", "sleep", "nsenter", "unshare", "ip",
                "prometheus", "prometheus-node-exporter", "prometheus-node"}  # comm is cut at 15 characters
LAB_SCRIPTS = {str(Path(__file__).resolve().parent.parent / name) for name in ("hostile.py", "delayline.py")}


def _is_lab_process(argv: list[str], state: Path) -> bool:
    """Only the lab's own programs: a user's shell or editor that merely mentions the state dir is left alone."""
    if not argv or not argv[0]:
        return False
    program = Path(argv[0].split()[0].rstrip(":")).name
    if program in LAB_PROGRAMS and any(str(state) in arg for arg in argv):
        return True  # e.g. daemons with configs there, ansible's ssh masters ("ssh: <state>/ssh/cp/... [mux]")
    return any(arg in LAB_SCRIPTS for arg in argv[1:3])


def _pid_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _orphan_pids(state: Path) -> set[int]:
    """Lab processes outside any named lab namespace: ssh masters in root, or survivors of a crashed down.
    Only in this PID namespace: a lab in another sandbox (own PID, mount and network namespaces) has its own
    /run/pnlab and is not ours to kill."""
    found = set()
    own_pidns = _pid_namespace("self")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
                if own_pidns is not None and _pid_namespace(proc.name) not in (own_pidns, None):
                    continue
            except OSError:
                continue
            if _is_lab_process(argv, state):
                found.add(int(proc.name))
    return found


def _recorded_pids(state: Path) -> set[int]:
    """Holders and daemons the state file names, if they still run a lab program (pids get reused)."""
    data = statefile.load(state) if state.is_dir() else {}
    found = set()
    for pid in [*data.get("holders", {}).values(), *data.get("pids", {}).values()]:
        try:
            if pid and Path(f"/proc/{pid}/comm").read_text().strip() in LAB_PROGRAMS | {"python3"}:
                found.add(int(pid))
        except OSError:
            continue
    return found


def lab_pids(state: Path) -> set[int]:
    pids = _orphan_pids(state) | _recorded_pids(state)
    for name in lab_namespaces():
        pids |= _netns_pids(name)
    return pids


def _root_mounts_under(state: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == str(state) or point.startswith(f"{state}/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def down(state: Path) -> list[str]:
    """Idempotent; returns what it removed so callers can say so."""
    removed = []
    pids = lab_pids(state)
    kill_all(pids)
    if pids:
        removed.append(f"{len(pids)} processes")
    for name in lab_namespaces():
        run(["ip", "netns", "del", name], check=False)
        removed.append(f"netns {name}")
    if run(["ip", "link", "show", CONTROLLER_LINK], check=False).returncode == 0:
        run(["ip", "link", "del", CONTROLLER_LINK], check=False)
        removed.append(f"link {CONTROLLER_LINK}")
    for point in _root_mounts_under(state):
        run(["umount", "-l", point], check=False)
        removed.append(f"mount {point}")
    for etc in Path("/etc/netns").glob(f"{PREFIX}*"):
        shutil.rmtree(etc, ignore_errors=True)
        removed.append(str(etc))
    if Path("/etc/netns").is_dir() and not any(Path("/etc/netns").iterdir()):
        Path("/etc/netns").rmdir()
    if state.exists():
        shutil.rmtree(state, ignore_errors=True)
        removed.append(str(state))
    return removed
