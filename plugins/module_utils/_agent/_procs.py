# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Finding the agent's processes in /proc (comm, or argv[0]'s base name) and the sockets they hold (the
# socket:[INODE] links in /proc/PID/fd). Anyone may read a process's comm and cmdline; its fd directory only its own
# user or root (ptrace access mode), which is what "cannot see" means. With /proc mounted hidepid, other users'
# processes do not show at all, so "no agent" cannot be told from "not allowed to look".
from __future__ import annotations

import os
import typing as t

SOCKET_LINK_PREFIX = "socket:["
COMM_MAX = 15  # the kernel cuts comm to TASK_COMM_LEN - 1 bytes


class AgentProcess(t.NamedTuple):
    pid: int
    name: str
    started: t.Optional[float]  # epoch seconds the process started, from its stat line


class Fds(t.NamedTuple):
    inodes: t.Optional[t.Set[int]]  # None: the fd directory could not be read
    error: t.Optional[str]


def _read(path: str) -> t.Optional[str]:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None  # the process went away, or a kernel thread without cmdline


def process_name(proc: str, pid: int, wanted: t.Collection[str]) -> t.Optional[str]:
    """The name under which pid matches one of wanted (comm first, then argv[0]'s base name), or None."""
    comm = (_read(f"{proc}/{pid}/comm") or "").rstrip("\n")
    for name in wanted:
        if comm and comm == name[:COMM_MAX]:
            return name
    argv0 = (_read(f"{proc}/{pid}/cmdline") or "").split("\0", 1)[0]
    base = os.path.basename(argv0)
    return base if base and base in wanted else None


def boot_time(proc: str) -> t.Optional[float]:
    """Epoch seconds of boot: /proc/stat's btime (whole seconds, which is all the kernel prints)."""
    for line in (_read(proc + "/stat") or "").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def start_time(proc: str, pid: int, booted: t.Optional[float]) -> t.Optional[float]:
    stat = _read(f"{proc}/{pid}/stat")
    if stat is None or booted is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        ticks = int(fields[19])  # field 22 of proc(5), counted after "pid (comm)"
    except (IndexError, ValueError):
        return None
    return booted + ticks / os.sysconf("SC_CLK_TCK")


def network_namespace(proc: str, pid: t.Union[int, str]) -> t.Optional[int]:
    try:
        return os.stat(f"{proc}/{pid}/ns/net").st_ino
    except OSError:
        return None  # another user's process: not ours to know


def find_processes(proc: str, wanted: t.Collection[str]) -> t.List[AgentProcess]:
    """The matching processes of this host's network namespace: an agent in a container (another namespace) is that
    container's agent, with its own sockets, and one whose namespace we may not know is kept (it shows as unseen)."""
    booted = boot_time(proc)
    ours = network_namespace(proc, "self")
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        pid = int(entry)
        name = process_name(proc, pid, wanted)
        if name is None or network_namespace(proc, pid) not in (ours, None):
            continue
        found.append(AgentProcess(pid, name, start_time(proc, pid, booted)))
    return sorted(found)


def socket_inodes(proc: str, pid: int) -> Fds:
    fd_dir = f"{proc}/{pid}/fd"
    try:
        entries = os.listdir(fd_dir)
    except OSError as exc:
        return Fds(None, f"{fd_dir}: {exc.strerror or exc}")
    inodes = set()
    for entry in entries:
        try:
            target = os.readlink(fd_dir + "/" + entry)
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith(SOCKET_LINK_PREFIX) and target.endswith("]"):
            inodes.add(int(target[len(SOCKET_LINK_PREFIX):-1]))
    return Fds(inodes, None)


def hidepid(proc: str) -> bool:
    """Whether /proc is mounted with hidepid (other users' processes invisible to us)."""
    for line in (_read(proc + "/self/mountinfo") or "").splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == proc and "hidepid=" in line:
            value = line.split("hidepid=", 1)[1].split(",", 1)[0].split()[0]
            return value not in ("0", "off")
    return False
