# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Wake-on-LAN destinations: what will cross a router and what will not. Pure (stdlib ipaddress only)."""
from __future__ import annotations

import ipaddress
import typing as t

PORTS = (7, 9)
DEFAULT_PORT = 9
ALLOWABLE = ("unicast", "loopback", "unspecified", "limited_broadcast")

KIND_V4_MULTICAST = "ipv4_multicast"
KIND_V6_MULTICAST = "ipv6_multicast"
KIND_BROADCAST = "directed_broadcast"

# Why each refused kind does not reach a sleeping machine behind a router (the module's error text).
WHY = {
    "unicast": ("is a unicast address: a router forwards it, but the last hop cannot deliver it to a sleeping "
                "machine, which does not answer ARP or neighbour discovery (only a static ARP/neighbour entry "
                "makes it work). Give a subnet-directed broadcast as ADDRESS/PREFIX (e.g. 10.1.2.255/24), a "
                "subnet in 'subnets', or a multicast group; or allow 'unicast' if that entry exists"),
    "loopback": "is a loopback address: the packet never leaves the ESET PROTECT server",
    "unspecified": "is the unspecified address: it is not a destination at all, nothing is sent anywhere",
    "limited_broadcast": ("is the limited broadcast: routers never forward it (RFC 1812), so it reaches only the "
                          "server's own segment; use the subnet-directed broadcast of each agent subnet instead"),
}


class DestinationError(ValueError):
    """A destination that is malformed or refused; the message says why."""


class Destination(t.NamedTuple):
    address: str          # canonical text: 239.255.0.9, ff05::9, 10.1.2.255
    kind: str             # ipv4_multicast | ipv6_multicast | directed_broadcast | unicast | loopback | ...
    family: str           # ipv4 | ipv6
    subnet: t.Optional[str]   # directed broadcasts: the subnet (10.1.2.0/24)
    scope: str            # global | site | organization | admin | realm | link | interface
    source: str           # "destinations" or "subnets"

    def as_dict(self, port: int) -> t.Dict[str, t.Any]:
        return {"address": self.address, "kind": self.kind, "family": self.family, "subnet": self.subnet,
                "scope": self.scope, "port": port, "source": self.source}


_V6_SCOPES = {1: "interface", 2: "link", 3: "realm", 4: "admin", 5: "site", 8: "organization", 14: "global"}


def _v6_scope(addr: ipaddress.IPv6Address) -> str:
    return _V6_SCOPES.get(addr.packed[1] & 0x0F, f"scope {addr.packed[1] & 0x0F:x}")


def _v4_scope(addr: ipaddress.IPv4Address) -> str:
    if addr in ipaddress.ip_network("224.0.0.0/24"):
        return "link"
    if addr in ipaddress.ip_network("239.255.0.0/16"):
        return "site"
    if addr in ipaddress.ip_network("239.0.0.0/8"):
        return "organization"
    return "global"


def broadcast_of(subnet: str) -> t.Tuple[str, str]:
    """'10.1.2.0/24' (or an interface address '10.1.2.7/24') -> ('10.1.2.255', '10.1.2.0/24')."""
    try:
        net = ipaddress.ip_network(str(subnet).strip(), strict=False)
    except ValueError as exc:
        raise DestinationError(f"subnets entry {subnet!r} is not an IPv4 network (expected e.g. 10.1.2.0/24)") from exc
    if net.version != 4:
        raise DestinationError(f"subnets entry {subnet!r} is IPv6: IPv6 has no broadcast; give an IPv6 multicast "
                               "group (e.g. ff05::1:9) in 'destinations' instead")
    if net.prefixlen > 30:
        raise DestinationError(f"subnets entry {subnet!r}: a /{net.prefixlen} has no directed broadcast address "
                               "(use /30 or shorter)")
    return str(net.broadcast_address), net.with_prefixlen


def classify(text: str, source: str = "destinations") -> Destination:
    """One entry: an IPv4/IPv6 address, or ADDRESS/PREFIX naming a subnet's directed broadcast."""
    value = str(text).strip()
    if "/" in value:
        address = value.partition("/")[0]
        try:
            net = ipaddress.ip_network(value, strict=False)
            addr = ipaddress.ip_address(address)
        except ValueError as exc:
            raise DestinationError(f"{source} entry {value!r} is not an address or ADDRESS/PREFIX") from exc
        if net.version == 6:
            raise DestinationError(f"{source} entry {value!r}: IPv6 has no broadcast; give the multicast group "
                                   "address alone (e.g. ff05::1:9)")
        if addr.is_multicast:
            raise DestinationError(f"{source} entry {value!r}: {addr} is a multicast group, which takes no prefix; "
                                   f"give it alone ({addr})")
        if addr != net.broadcast_address or net.prefixlen > 30:
            raise DestinationError(f"{source} entry {value!r} is not the directed broadcast of {net.with_prefixlen}"
                                   + (f" (that is {net.broadcast_address}/{net.prefixlen})"
                                      if net.prefixlen <= 30 else " (a /31 or /32 has none)"))
        return Destination(str(addr), KIND_BROADCAST, "ipv4", net.with_prefixlen, "routed", source)
    try:
        addr = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError as exc:
        raise DestinationError(f"{source} entry {value!r} is not an IPv4/IPv6 address (expected e.g. 239.255.0.9, "
                               "ff05::1:9 or 10.1.2.255/24)") from exc
    family = "ipv4" if addr.version == 4 else "ipv6"
    if addr.is_multicast:
        if isinstance(addr, ipaddress.IPv4Address):
            return Destination(str(addr), KIND_V4_MULTICAST, family, None, _v4_scope(addr), source)
        return Destination(str(addr), KIND_V6_MULTICAST, family, None, _v6_scope(addr), source)
    if addr.is_unspecified:
        kind = "unspecified"
    elif addr.is_loopback:
        kind = "loopback"
    elif addr == ipaddress.IPv4Address("255.255.255.255"):
        kind = "limited_broadcast"
    else:
        kind = "unicast"
    return Destination(str(addr), kind, family, None, "host", source)


class Validated(t.NamedTuple):
    destinations: t.List[Destination]
    warnings: t.List[str]
    duplicates: t.List[str]


def validate(destinations: t.Sequence[str] = (), subnets: t.Sequence[str] = (),
             allow: t.Sequence[str] = (), computed: t.Optional[t.Mapping[str, t.Sequence[str]]] = None) -> Validated:
    """Normalise and check every destination. Raises DestinationError listing every refused entry.

    computed: subnet -> (broadcast, network) already worked out on the controller (by broadcast_of, the same code
    the action plugin calls); subnets missing from it are computed here."""
    found: t.List[Destination] = []
    errors: t.List[str] = []
    for entry in destinations:
        try:
            found.append(classify(entry))
        except DestinationError as exc:
            errors.append(str(exc))
    for subnet in subnets:
        try:
            pre = (computed or {}).get(str(subnet))
            bcast, net = (str(pre[0]), str(pre[1])) if pre else broadcast_of(subnet)
            found.append(Destination(bcast, KIND_BROADCAST, "ipv4", net, "routed", "subnets"))
        except DestinationError as exc:
            errors.append(str(exc))
    unknown = [a for a in allow if a not in ALLOWABLE]
    if unknown:
        errors.append(f"allow: unknown value(s) {', '.join(unknown)} (known: {', '.join(ALLOWABLE)})")
    for dest in found:
        if dest.kind in WHY and dest.kind not in allow:
            errors.append(f"{dest.address} {WHY[dest.kind]}")
    if errors:
        raise DestinationError("; ".join(errors))
    out: t.List[Destination] = []
    seen: t.Dict[str, Destination] = {}
    duplicates: t.List[str] = []
    warnings: t.List[str] = []
    for dest in found:
        if dest.address in seen:
            duplicates.append(dest.address)
            continue
        seen[dest.address] = dest
        out.append(dest)
        if dest.scope == "link":
            warnings.append(f"{dest.address} is a link-local multicast group: it stays on the ESET PROTECT server's "
                            "own segment (routers never forward it), so it wakes only machines on that segment")
        elif dest.scope == "interface":
            warnings.append(f"{dest.address} is an interface-local multicast group: it never leaves the server")
    if not out:
        raise DestinationError("no destination: give at least one address in 'destinations' or a subnet in 'subnets'")
    return Validated(out, warnings, duplicates)


def values(dests: t.Sequence[Destination]) -> t.List[str]:
    """What the server setting holds: the plain addresses, in order."""
    return [d.address for d in dests]
