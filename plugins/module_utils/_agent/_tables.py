# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The kernel's TCP socket tables (/proc/net/tcp, /proc/net/tcp6; proc(5)), established sockets only. Addresses are
# printed as 32-bit words in host byte order; an IPv4 peer of an IPv6 socket shows as ::ffff:a.b.c.d and is given
# back in its IPv4 form, so it compares equal to the address a resolver returns.
from __future__ import annotations

import ipaddress
import socket
import sys
import typing as t

ESTABLISHED = "01"
TABLES = ("tcp", "tcp6")


class TcpSocket(t.NamedTuple):
    inode: int
    local: str
    local_port: int
    remote: str
    remote_port: int


def decode_address(hex_address: str) -> str:
    """'0100007F' (tcp) or 32 hex digits (tcp6) -> the address's text form, IPv4-mapped IPv6 as IPv4."""
    raw = bytes.fromhex(hex_address)
    if len(raw) not in (4, 16):
        raise ValueError("not a /proc/net/tcp address: " + hex_address)
    words = b"".join(int.from_bytes(raw[i:i + 4], sys.byteorder).to_bytes(4, "big") for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return plain_address(socket.inet_ntop(family, words))


def plain_address(text: str) -> str:
    """One spelling per address: compressed IPv6, IPv4-mapped IPv6 as IPv4, no zone."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _endpoint(field: str) -> t.Tuple[str, int]:
    hex_address, hex_port = field.rsplit(":", 1)
    return decode_address(hex_address), int(hex_port, 16)


def parse_table(text: str) -> t.List[TcpSocket]:
    """The established sockets of one table's text; a line that does not parse is skipped, not fatal."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != ESTABLISHED:
            continue
        try:
            local, local_port = _endpoint(fields[1])
            remote, remote_port = _endpoint(fields[2])
            inode = int(fields[9])
        except ValueError:
            continue
        if inode:  # 0: no socket behind it any more (orphaned, closing)
            found.append(TcpSocket(inode, local, local_port, remote, remote_port))
    return found


def read_tables(net_dir: str) -> t.Optional[t.Dict[int, TcpSocket]]:
    """inode -> established socket of one network namespace's tables (net_dir: /proc/net or /proc/PID/net); None
    when neither table can be read."""
    sockets: t.Dict[int, TcpSocket] = {}
    read_any = False
    for table in TABLES:
        try:
            with open(net_dir + "/" + table) as handle:
                text = handle.read()
        except OSError:
            continue  # tcp6 is absent on a kernel without IPv6
        read_any = True
        sockets.update((s.inode, s) for s in parse_table(text))
    return sockets if read_any else None
