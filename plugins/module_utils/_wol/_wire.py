# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Sending magic packets and listening for them, bounded in time. Standard library only (Linux, Python 3.8+)."""
from __future__ import annotations

import datetime
import errno
import ipaddress
import os
import select
import socket
import struct
import time
import typing as t

from ._packet import build, format_mac, parse

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
# the TTL / hop limit a packet arrived with: proves what the sender (or a TTL rewrite on the way) set
IP_RECVTTL, IP_TTL = getattr(socket, "IP_RECVTTL", 12), getattr(socket, "IP_TTL", 2)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_JOIN_GROUP = getattr(socket, "IPV6_JOIN_GROUP", 20)

# sendto() errors -> a failure class the report explains
SEND_CLASSES = {
    errno.EPERM: ("server_firewall", "the sending host's own egress firewall dropped the packet (sendto: EPERM)"),
    errno.EACCES: ("broadcast_refused", "the sending host refused to send to a broadcast address (EACCES)"),
    errno.ENETUNREACH: ("no_route", "the sending host has no route to this destination (ENETUNREACH)"),
    errno.EHOSTUNREACH: ("no_route", "the sending host cannot reach this destination (EHOSTUNREACH)"),
    errno.ENODEV: ("no_interface", "the chosen interface does not exist or is down (ENODEV)"),
    errno.EADDRNOTAVAIL: ("no_interface", "no usable source address for this destination (EADDRNOTAVAIL)"),
}


def now_iso(epoch: t.Optional[float] = None) -> str:
    stamp = datetime.datetime.fromtimestamp(time.time() if epoch is None else epoch, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _ifindex(interface: t.Optional[str]) -> int:
    return socket.if_nametoindex(interface) if interface else 0


# -- sending ------------------------------------------------------------------------------------------------------
def send(destinations: t.Sequence[t.Mapping[str, t.Any]], port: int, mac: bytes, secureon: bytes = b"",
         count: int = 3, interval: float = 0.3, ttl: int = 1, interface: t.Optional[str] = None,
         clock: t.Callable[[], float] = time.time, sleep: t.Callable[[float], None] = time.sleep,
         sockets: t.Optional[t.Dict[int, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    """Send count magic packets to each destination, round-robin, interval seconds apart; one record each."""
    payload = build(mac, secureon)
    index = _ifindex(interface)
    socks = sockets if sockets is not None else {}
    records: t.List[t.Dict[str, t.Any]] = []
    for dest in destinations:
        records.append({"address": dest["address"], "kind": dest.get("kind"), "port": port, "sent": 0, "ok": False,
                        "first_sent_at": None, "first_sent_ms": None, "failure": None})
    try:
        for round_ in range(max(1, count)):
            if round_:
                sleep(interval)
            for record in records:
                family = socket.AF_INET6 if ":" in record["address"] else socket.AF_INET
                sock = socks.get(family)
                if sock is None:
                    sock = socks[family] = _send_socket(family, ttl, index)
                stamp = clock()
                try:
                    sock.sendto(payload, (record["address"], port))
                except OSError as exc:
                    cls, text = SEND_CLASSES.get(exc.errno or 0, ("send_error", f"sendto failed: {exc}"))
                    record["failure"] = {"class": cls, "message": text,
                                         "errno": errno.errorcode.get(exc.errno or 0, "")}
                    continue
                record["sent"] += 1
                record["ok"] = True
                record["failure"] = None
                if record["first_sent_at"] is None:
                    record["first_sent_at"], record["first_sent_ms"] = now_iso(stamp), int(stamp * 1000)
    finally:
        if sockets is None:
            for sock in socks.values():
                sock.close()
    return records


def _send_socket(family: int, ttl: int, index: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        if index:
            mreqn = struct.pack("4s4si", b"\0" * 4, b"\0" * 4, index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        if index:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    return sock


# -- listening ----------------------------------------------------------------------------------------------------
class Listener:
    """UDP sockets on port (IPv4 and IPv6) joined to the multicast groups; collects magic packets for mac."""

    def __init__(self, port: int, groups: t.Sequence[str] = (), interface: t.Optional[str] = None,
                 ipv6: bool = True) -> None:
        self.port = port
        self.socks: t.List[socket.socket] = []
        self.joined: t.List[str] = []
        self.errors: t.List[str] = []
        index = _ifindex(interface)
        try:
            v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.socks.append(v4)
            v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            v4.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            v4.bind(("0.0.0.0", port))  # noqa: S104 - a listener for broadcasts must bind the wildcard
            v6 = None
            if ipv6 and socket.has_ipv6:
                try:
                    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                    self.socks.append(v6)
                    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    v6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                    v6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                    v6.bind(("::", port))
                except OSError as exc:
                    self.errors.append(f"IPv6 listener not started: {exc}")
                    v6 = None
            for group in groups:
                addr = ipaddress.ip_address(group)
                try:
                    if addr.version == 4:
                        mreq = struct.pack("4s4si", addr.packed, b"\0" * 4, index)
                        v4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                    elif v6 is not None:
                        v6.setsockopt(socket.IPPROTO_IPV6, IPV6_JOIN_GROUP, addr.packed + struct.pack("@I", index))
                    else:
                        continue
                    self.joined.append(str(addr))
                except OSError as exc:
                    self.errors.append(f"cannot join {addr}: {exc}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []

    def collect(self, seconds: float, mac: bytes, secureon: bytes = b"", expect: t.Sequence[str] = (),
                clock: t.Callable[[], float] = time.time, stop_file: t.Optional[str] = None,
                grace: float = 1.0) -> t.List[t.Dict[str, t.Any]]:
        """Magic packets for mac until seconds pass, until every address in expect has been seen once, or grace
        seconds after stop_file appears (the sender is done)."""
        deadline = time.monotonic() + seconds
        stopping = False
        arrivals: t.List[t.Dict[str, t.Any]] = []
        waiting = set(expect)
        try:
            while self.socks:
                left = deadline - time.monotonic()
                if left <= 0 or (expect and not waiting):
                    break
                if stop_file and not stopping and os.path.exists(stop_file):
                    stopping = True
                    deadline = min(deadline, time.monotonic() + grace)
                ready = select.select(self.socks, [], [], min(left, 0.5))[0]
                for sock in ready:
                    try:
                        data, anc, _flags, peer = sock.recvmsg(2048, socket.CMSG_SPACE(64))
                    except OSError:
                        continue
                    stamp = clock()
                    found = parse(data)
                    if found is None or found[0] != mac:
                        continue
                    dest = _destination(anc)
                    arrivals.append({"destination": dest, "source": peer[0].split("%", 1)[0], "source_port": peer[1],
                                     "at": now_iso(stamp), "at_ms": int(stamp * 1000), "mac": format_mac(found[0]),
                                     "secureon_ok": (not secureon) or found[1] == secureon, "ttl": _ttl(anc)})
                    waiting.discard(dest)
        finally:
            self.close()
        return arrivals


def _ttl(ancillary: t.Sequence[t.Tuple[int, int, bytes]]) -> t.Optional[int]:
    for level, kind, data in ancillary:
        if len(data) >= 4 and ((level == socket.IPPROTO_IP and kind == IP_TTL)
                               or (level == socket.IPPROTO_IPV6 and kind == IPV6_HOPLIMIT)):
            return int(struct.unpack("@i", data[:4])[0])
    return None


def _destination(ancillary: t.Sequence[t.Tuple[int, int, bytes]]) -> str:
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            return socket.inet_ntop(socket.AF_INET, data[8:12])
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(data) >= 16:
            return socket.inet_ntop(socket.AF_INET6, data[:16])
    return ""
