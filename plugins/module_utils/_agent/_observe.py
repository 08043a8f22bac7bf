# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# observe(): the agent's established connections, each classified by its remote end (an EPNS address on an EPNS
# port, the agent's proxy, or other), and one summary. How long a connection has been up is not in /proc: the kernel
# keeps no start time per socket there. What it does show is when the process holding the socket started, and a
# connection cannot be older than that: `since` is that start, `up_seconds` an upper bound (docs/agent-connection.md).
from __future__ import annotations

import os
import socket
import time
import typing as t

from .. import _epns
from ._procs import AgentProcess, find_processes, hidepid, socket_inodes
from ._tables import TcpSocket, plain_address, read_tables

DEFAULT_PROCESS_NAMES = ("ERAAgent",)
DEFAULT_PORTS = (_epns.PRIMARY_PORT, _epns.FALLBACK_PORT)
TARGET_EPNS, TARGET_PROXY, TARGET_OTHER = "epns", "proxy", "other"
CONNECTED, NOT_CONNECTED, NO_AGENT, CANNOT_SEE = "connected", "not_connected", "no_agent", "cannot_see"


class AgentConfigError(ValueError):
    """Bad input to observe(), in words naming the value."""


class Observation(t.NamedTuple):
    visible: bool
    reason: t.Optional[str]
    processes: t.List[t.Dict[str, t.Any]]
    connections: t.List[t.Dict[str, t.Any]]
    summary: t.Dict[str, t.Any]
    message: str
    epns_addresses: t.List[str]
    proxies: t.List[t.Dict[str, t.Any]]

    def as_result(self) -> t.Dict[str, t.Any]:
        return dict(self._asdict())


class Proxy(t.NamedTuple):
    host: str
    port: int


def parse_proxy(text: str) -> Proxy:
    """'host:port', '[v6]:port' or 'http://host:port[/]' -> Proxy; credentials are refused without echoing them."""
    rest = text.strip()
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if scheme.lower() not in ("http", "https"):
            raise AgentConfigError(f"proxy {text!r}: scheme {scheme!r} is not http")
    rest = rest.rstrip("/")
    if "@" in rest:
        raise AgentConfigError("a proxy was given with a user name or password; give it as host:port "
                               "(EPNS cannot authenticate to a proxy)")
    host, sep, port = rest.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or "/" in rest or not port.isdigit() or not 0 < int(port) < 65536:
        raise AgentConfigError(f"proxy {text!r}: expected host:port or http://host:port with a port 1-65535")
    return Proxy(host, int(port))


def check_ports(ports: t.Sequence[int]) -> t.List[int]:
    bad = [p for p in ports if not isinstance(p, int) or not 0 < p < 65536]
    if bad or not ports:
        raise AgentConfigError(f"ports {list(ports)!r}: expected a non-empty list of TCP ports 1-65535")
    return list(ports)


def resolve(host: str) -> t.List[str]:
    """Every address the host's resolver gives for host (both families); [] when it gives none."""
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({plain_address(str(info[4][0])) for info in infos})


def _addresses(given: t.Optional[t.Sequence[str]], host: str) -> t.List[str]:
    if not given:
        return resolve(host)
    found = []
    for text in given:
        try:
            found.append(plain_address(text))
        except ValueError:
            raise AgentConfigError(f"epns_addresses: {text!r} is not an IPv4 or IPv6 address") from None
    return sorted(set(found))


def _classify(sock: TcpSocket, epns: t.Set[str], ports: t.Sequence[int],
              proxies: t.Dict[t.Tuple[str, int], Proxy]) -> t.Tuple[str, t.Optional[Proxy]]:
    proxy = proxies.get((sock.remote, sock.remote_port))
    if proxy is not None:  # before EPNS: a proxy on 443 of an address that is also EPNS's is still the proxy
        return TARGET_PROXY, proxy
    if sock.remote in epns and sock.remote_port in ports:
        return TARGET_EPNS, None
    return TARGET_OTHER, None


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _connection(process: AgentProcess, sock: TcpSocket, target: str, proxy: t.Optional[Proxy],
                now: float) -> t.Dict[str, t.Any]:
    up = None if process.started is None else max(0, int(now - process.started))
    return {"pid": process.pid, "local": _endpoint(sock.local, sock.local_port), "remote": sock.remote,
            "remote_port": sock.remote_port, "target": target,
            "proxy": None if proxy is None else _endpoint(proxy.host, proxy.port),
            "since": process.started, "up_seconds": up}


def _proxy_table(proxies: t.Sequence[Proxy]) -> t.Dict[t.Tuple[str, int], Proxy]:
    table = {}
    for proxy in proxies:
        for address in resolve(proxy.host):
            table[(address, proxy.port)] = proxy
    return table


class _Look(t.NamedTuple):
    processes: t.List[AgentProcess]
    connections: t.List[t.Dict[str, t.Any]]
    blind: t.List[str]  # why a process's sockets could not be read


def _look(proc: str, names: t.Sequence[str], epns: t.Set[str], ports: t.Sequence[int],
          proxies: t.Dict[t.Tuple[str, int], Proxy], now: float) -> _Look:
    try:
        processes = find_processes(proc, names)
    except OSError as exc:  # no /proc at all: not Linux, or a sandbox without it
        return _Look([], [], [f"cannot list the processes in {proc}: {exc.strerror or exc}"])
    tables = read_tables(proc + "/net") or {}  # find_processes kept only processes of this namespace
    connections, blind = [], []
    for process in processes:
        fds = socket_inodes(proc, process.pid)
        if fds.inodes is None:
            blind.append(f"cannot read the file descriptors of {process.name} (pid {process.pid}): {fds.error}")
            continue
        for inode in sorted(fds.inodes & set(tables)):
            target, proxy = _classify(tables[inode], epns, ports, proxies)
            connections.append(_connection(process, tables[inode], target, proxy, now))
    return _Look(processes, connections, blind)


def _rank(connection: t.Dict[str, t.Any], ports: t.Sequence[int]) -> t.Tuple[int, int]:
    """Direct to EPNS first, on the earliest port of `ports` (the primary); then the proxy."""
    if connection["target"] == TARGET_EPNS:
        return 0, list(ports).index(connection["remote_port"])
    return 1, 0


def _best(look: _Look, ports: t.Sequence[int]) -> t.Optional[t.Dict[str, t.Any]]:
    chosen = sorted((c for c in look.connections if c["target"] != TARGET_OTHER), key=lambda c: _rank(c, ports))
    return chosen[0] if chosen else None


def _summary(look: _Look, ports: t.Sequence[int], hidden: bool) -> t.Dict[str, t.Any]:
    best = _best(look, ports)
    if best is not None:
        direct = best["target"] == TARGET_EPNS
        return {"state": CONNECTED, "port": best["remote_port"] if direct else None,
                "via": "direct" if direct else "proxy", "up_seconds": best["up_seconds"]}
    if look.blind or (hidden and not look.processes):
        state = CANNOT_SEE
    else:
        state = NOT_CONNECTED if look.processes else NO_AGENT
    return {"state": state, "port": None, "via": None, "up_seconds": None}


def _duration(seconds: t.Optional[int]) -> str:
    if seconds is None:
        return "for an unknown time"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [(days, "d"), (hours, "h"), (rest // 60, "m")]
    text = " ".join(f"{n}{unit}" for n, unit in parts if n) if seconds >= 60 else f"{seconds}s"
    return f"at most {text} (the agent process's age)"


def _message(summary: t.Dict[str, t.Any], look: _Look, names: t.Sequence[str], reason: t.Optional[str],
             epns: t.List[str], best: t.Optional[t.Dict[str, t.Any]]) -> str:
    state = summary["state"]
    if best is not None:
        up = _duration(summary["up_seconds"])
        if summary["via"] == "direct":
            return f"the agent itself is on {summary['port']} direct to EPNS ({best['remote']}), up {up}"
        proxy = best["proxy"]
        return (f"the agent itself is connected via the proxy {proxy}, up {up}; which EPNS port it asked the proxy for "
                "cannot be seen from the host")
    if state == NO_AGENT:
        return f"no process named {' or '.join(names)} runs on this host"
    if state == CANNOT_SEE:
        return f"cannot see the agent's connections: {reason}"
    others = sum(1 for c in look.connections if c["target"] == TARGET_OTHER)
    known = ", ".join(epns) if epns else "none known: the EPNS name did not resolve here"
    plural = "" if others == 1 else "s"
    return (f"the agent holds no established connection to EPNS (addresses {known}) or to its proxy ({others} other "
            f"connection{plural})")


def _reason(look: _Look, hidden: bool, root: bool) -> t.Optional[str]:
    fix = "run the check as root (become: true) or as the agent's own user"
    if look.blind:
        return "; ".join([*look.blind, fix])
    if hidden and not look.processes and not root:
        return f"/proc is mounted with hidepid, so other users' processes are hidden; {fix}"
    return None


def observe(process_names: t.Sequence[str] = DEFAULT_PROCESS_NAMES,
            epns_addresses: t.Optional[t.Sequence[str]] = None,
            proxies: t.Sequence[str] = (),
            ports: t.Sequence[int] = DEFAULT_PORTS,
            epns_host: str = _epns.HOST,
            proc: str = "/proc") -> Observation:
    """What the agent holds right now. Raises AgentConfigError on bad input, nothing else: an unreadable /proc entry
    is a "cannot see", never an exception."""
    names = [n for n in process_names if n]
    if not names:
        raise AgentConfigError(f"process_names: expected at least one process name, got {list(process_names)!r}")
    ports = check_ports(ports)
    parsed = [parse_proxy(p) for p in proxies]
    epns = _addresses(epns_addresses, epns_host)
    look = _look(proc, names, set(epns), ports, _proxy_table(parsed), time.time())
    hidden = hidepid(proc)
    reason = _reason(look, hidden, os.geteuid() == 0)
    summary = _summary(look, ports, hidden and reason is not None)
    return Observation(
        visible=summary["state"] != CANNOT_SEE, reason=reason,
        processes=[{"pid": p.pid, "name": p.name} for p in look.processes], connections=look.connections,
        summary=summary, message=_message(summary, look, names, reason, epns, _best(look, ports)), epns_addresses=epns,
        proxies=[{"host": p.host, "port": p.port} for p in parsed])
