# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The probe's egress facts: per address family, the local source address the kernel picks toward the first EPNS
# address (a UDP connect(), which sends nothing) and the gateway and interface of the main routing table's route
# to it (/proc/net/route, /proc/net/ipv6_route). They let the fleet report group hosts by the way out they use.
# Every field is None when it cannot be known; nothing here raises.
from __future__ import annotations

import ipaddress
import socket
import struct
import typing as t

ROUTE_V4 = "/proc/net/route"
ROUTE_V6 = "/proc/net/ipv6_route"
RTF_UP, RTF_GATEWAY, RTF_REJECT = 0x0001, 0x0002, 0x0200
# Any port: connect() on a UDP socket only asks the kernel for a route and a source address.
_PROBE_PORT = 8883


class Route(t.NamedTuple):
    network: t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
    gateway: t.Optional[str]  # None: on-link, no gateway
    interface: str
    metric: int


def parse_route_v4(text: str) -> t.List[Route]:
    """Usable routes of /proc/net/route: addresses are printed as the host's own 32-bit integers, so they are
    packed back in native byte order (right on little- and big-endian hosts alike)."""
    routes = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, gateway, flags, metric, mask = (int(fields[i], 16) if i != 6 else int(fields[i])
                                                  for i in (1, 2, 3, 6, 7))
            network = ipaddress.IPv4Network((_v4(dest), _v4(mask)), strict=False)
        except ValueError:
            continue
        if flags & RTF_UP and not flags & RTF_REJECT:
            routes.append(Route(network, _v4(gateway) if flags & RTF_GATEWAY else None, fields[0], metric))
    return routes


def parse_route_v6(text: str) -> t.List[Route]:
    """Usable routes of /proc/net/ipv6_route (every table the kernel dumps; reject routes such as the kernel's
    unreachable default on lo are left out)."""
    routes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            network = ipaddress.IPv6Network((_v6(fields[0]), int(fields[1], 16)))
            gateway = ipaddress.IPv6Address(_v6(fields[4]))
            metric, flags = int(fields[5], 16), int(fields[8], 16)
        except ValueError:
            continue
        if flags & RTF_UP and not flags & RTF_REJECT:
            routes.append(Route(network, str(gateway) if flags & RTF_GATEWAY and int(gateway) else None,
                                fields[9], metric))
    return routes


def route_to(address: str, routes: t.Sequence[Route]) -> t.Optional[Route]:
    """The route the main table would use: the longest prefix holding the address, then the lowest metric."""
    try:
        target = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    matching = [r for r in routes if r.network.version == target.version and target in r.network]
    if not matching:
        return None
    return min(matching, key=lambda r: (-r.network.prefixlen, r.metric))


def source_toward(address: str) -> t.Optional[str]:
    """The local address the kernel would send from toward `address` (None when it has no route)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address.split("%", 1)[0]).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((address, _PROBE_PORT))
            return str(sock.getsockname()[0]).split("%", 1)[0]
    except (OSError, ValueError):
        return None


def egress_facts(addresses: t.Sequence[str], route_v4: str = ROUTE_V4,
                 route_v6: str = ROUTE_V6) -> t.Dict[str, t.Optional[t.Dict[str, t.Optional[str]]]]:
    """{"ipv4": facts | None, "ipv6": facts | None}: a family is None when no address of it was given; facts are
    {toward, source, gateway, interface}, each None when unknown (gateway also None when the address is on-link)."""
    facts: t.Dict[str, t.Optional[t.Dict[str, t.Optional[str]]]] = {"ipv4": None, "ipv6": None}
    for family, path, parse in (("ipv4", route_v4, parse_route_v4), ("ipv6", route_v6, parse_route_v6)):
        toward = next((a for a in addresses if _family(a) == family), None)
        if toward is None:
            continue
        route = route_to(toward, parse(_read(path)))
        facts[family] = {"toward": toward, "source": source_toward(toward),
                         "gateway": route.gateway if route else None, "interface": route.interface if route else None}
    return facts


def _family(address: str) -> t.Optional[str]:
    try:
        return "ipv6" if ipaddress.ip_address(str(address).split("%", 1)[0]).version == 6 else "ipv4"
    except ValueError:
        return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _v4(value: int) -> str:
    return socket.inet_ntoa(struct.pack("=I", value))


def _v6(text: str) -> str:
    return str(ipaddress.IPv6Address(bytes.fromhex(text)))
