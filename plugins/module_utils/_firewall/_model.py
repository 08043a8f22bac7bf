# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The backend-neutral half of the firewall capability: the egress policy the user asked for (Policy), what a
# backend owns on the host (State), and the difference between two States (Diff). Pure: no commands, no I/O
# except name resolution in resolve(). Standard library only; managed hosts run Python 3.8+.
from __future__ import annotations

import ipaddress
import socket
import typing as t
from dataclasses import dataclass, field

# Every object the capability creates carries this tag (rule comments, set and chain names), so it finds its own.
TAG = "protectnet_epns"

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
FAMILIES = ("ipv4", "ipv6")


class FirewallError(Exception):
    """Bad input or an unusable host: the message names the problem. Nothing was changed."""


class ApplyError(FirewallError):
    """A change failed part-way; the backend restored the previous state (rolled_back says whether it could)."""

    def __init__(self, message: str, rolled_back: bool = True, detail: str = "") -> None:
        super().__init__(message)
        self.rolled_back = rolled_back
        self.detail = detail


# -- destinations ---------------------------------------------------------------------------------------------
def _network_or_problem(text: str) -> t.Tuple[t.Optional[Network], str]:
    """One address or CIDR, strictly; else why not (host bits set names the network probably meant)."""
    value = str(text).strip()
    try:
        return ipaddress.ip_network(value, strict=True), ""
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return None, (f"{value!r} is not an IPv4/IPv6 address or CIDR (expected e.g. 91.228.165.144/28 or "
                          "2001:db8::/64)")
    address = value.split("/", 1)[0]
    return None, (f"{value!r} has host bits set: the network is {loose.with_prefixlen} (or write the single "
                  f"address as {address}/{loose.max_prefixlen})")


def parse_network(text: str, what: str = "destination") -> Network:
    network, problem = _network_or_problem(text)
    if network is None:
        raise FirewallError(f"{what} {problem}")
    return network


def normalise_destinations(entries: t.Sequence[t.Any], what: str = "extra_destinations") -> t.List[str]:
    """Every entry checked (each bad one named in one FirewallError), overlapping and adjacent networks merged:
    IPv4 first, then IPv6, each sorted. The action plugin's normalisation on the controller and the module's."""
    networks: t.List[Network] = []
    problems: t.List[str] = []
    for entry in entries:
        network, problem = _network_or_problem(entry)
        if network is None:
            problems.append(problem)
        else:
            networks.append(network)
    if problems:
        raise FirewallError(f"{what}: " + "; ".join(problems))
    merged = collapse(networks)
    return [*merged["ipv4"], *merged["ipv6"]]


def collapse(networks: t.Iterable[Network]) -> t.Dict[str, t.Tuple[str, ...]]:
    """Merge overlapping and adjacent networks per family; the result is sorted and canonical."""
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    return {
        "ipv4": tuple(n.with_prefixlen for n in ipaddress.collapse_addresses(v4)),
        "ipv6": tuple(n.with_prefixlen for n in ipaddress.collapse_addresses(v6)),
    }


def canonical_element(text: str) -> str:
    """An address or CIDR as this module writes set elements: always with a prefix length."""
    return ipaddress.ip_network(text, strict=False).with_prefixlen


Resolver = t.Callable[..., t.Any]


def resolve(name: str, resolver: Resolver = socket.getaddrinfo) -> t.List[Network]:
    """The A and AAAA addresses of name from the host's own resolver. An address literal resolves to itself."""
    try:
        return [ipaddress.ip_network(name, strict=True)]
    except ValueError:
        pass
    try:
        infos = resolver(name, None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FirewallError(f"cannot resolve {name!r} with this host's resolver: {exc}") from exc
    found: t.List[Network] = []
    for info in infos:
        family, address = info[0], info[4][0]
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        network = ipaddress.ip_network(address.split("%", 1)[0])
        if network not in found:
            found.append(network)
    if not found:
        raise FirewallError(f"{name!r} resolved to no IPv4 or IPv6 address with this host's resolver")
    return found


# Query failures (a timeout, a server failure), unlike "no address of this family" (EAI_NODATA, EAI_NONAME),
# which is an answer. The refresh job keeps a failed family's addresses instead of emptying it.
LOOKUP_FAILURES = frozenset({socket.EAI_AGAIN, socket.EAI_FAIL})
FAMILY_QUERY = {"ipv4": (socket.AF_INET, "A"), "ipv6": (socket.AF_INET6, "AAAA")}


def resolve_each_family(name: str, resolver: Resolver, failed: t.Dict[str, str]) -> t.List[Network]:
    """name's A and AAAA addresses asked for separately; a family whose query failed is added to failed (family ->
    why) instead of counting as 'no addresses'. Raises FirewallError when no family answered with an address."""
    try:
        return [ipaddress.ip_network(name, strict=True)]
    except ValueError:
        pass
    found: t.List[Network] = []
    for family, (af, record) in FAMILY_QUERY.items():
        try:
            found += [n for n in resolve_family(name, af, resolver) if n not in found]
        except socket.gaierror as exc:
            if exc.errno not in LOOKUP_FAILURES:
                continue  # an answer: no address of this family
            failed[family] = f"the {record} query for {name!r} failed ({exc.strerror or exc})"
        except (OSError, UnicodeError) as exc:
            failed[family] = f"the {record} query for {name!r} failed ({exc})"
    if not found:
        why = "; ".join(failed.values()) or "no IPv4 or IPv6 address"
        raise FirewallError(f"cannot resolve {name!r} with this host's resolver: {why}")
    return found


def resolve_family(name: str, af: int, resolver: Resolver) -> t.List[Network]:
    return [ipaddress.ip_network(info[4][0].split("%", 1)[0]) for info in resolver(name, None, af, socket.SOCK_STREAM)
            if info[0] == af]


def split_host_port(text: str, what: str = "via_proxy") -> t.Tuple[str, int]:
    """'host:port', '1.2.3.4:3128' or '[2001:db8::1]:3128'."""
    value = str(text).strip()
    if "://" in value:
        raise FirewallError(f"{what} {value!r} must be HOST:PORT without a scheme (e.g. proxy.example.com:3128)")
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
        if ":" in host:
            raise FirewallError(f"{what} {value!r}: write an IPv6 address in brackets, e.g. [2001:db8::1]:3128")
    if not sep or not host or not port:
        raise FirewallError(f"{what} {value!r} must be HOST:PORT (e.g. proxy.example.com:3128)")
    return host, check_port(port, what)


def check_port(value: t.Any, what: str = "port") -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise FirewallError(f"{what}: {value!r} is not a TCP port (expected an integer from 1 to 65535)")
    return port


# -- the policy ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    """One kind of destination and the ports allowed to it: 'epns' (the service), 'proxy' (the HTTP proxy), both TCP;
    or 'wol' (Wake-on-LAN: UDP to multicast groups and directed broadcasts, owned by another tag)."""

    name: str
    ports: t.Tuple[int, ...]
    ipv4: t.Tuple[str, ...] = ()
    ipv6: t.Tuple[str, ...] = ()
    proto: str = "tcp"               # "udp" for Wake-on-LAN (wol_multicast); the epns groups are TCP
    ttl: t.Optional[int] = None      # rewrite the IPv4 TTL / IPv6 hop limit of matching packets (nftables only)

    def addresses(self, family: str) -> t.Tuple[str, ...]:
        return self.ipv4 if family == "ipv4" else self.ipv6


@dataclass(frozen=True)
class Policy:
    """The desired egress: an ordered tuple of groups, each with its networks per family (collapsed, sorted)."""

    groups: t.Tuple[Group, ...]
    sources: t.Dict[str, t.Any] = field(default_factory=dict, compare=False, hash=False)

    def group(self, name: str) -> t.Optional[Group]:
        for group in self.groups:
            if group.name == name:
                return group
        return None


@dataclass
class PolicySpec:
    """What the user asked for, before resolution. Also the refresh job's configuration (as_dict/from_dict)."""

    host: str
    ports: t.Tuple[int, ...]
    extra_destinations: t.Tuple[str, ...] = ()
    via_proxy: t.Optional[str] = None
    also_direct: bool = False
    resolve_host: bool = True

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"host": self.host, "ports": list(self.ports), "extra_destinations": list(self.extra_destinations),
                "via_proxy": self.via_proxy, "also_direct": self.also_direct, "resolve_host": self.resolve_host}

    @classmethod
    def from_dict(cls, data: t.Mapping[str, t.Any]) -> PolicySpec:
        return cls(host=str(data["host"]), ports=tuple(int(p) for p in data["ports"]),
                   extra_destinations=tuple(str(d) for d in data.get("extra_destinations", ())),
                   via_proxy=data.get("via_proxy"), also_direct=bool(data.get("also_direct", False)),
                   resolve_host=bool(data.get("resolve_host", True)))


def build_policy(spec: PolicySpec, resolver: Resolver = socket.getaddrinfo,
                 failed: t.Optional[t.Dict[str, str]] = None) -> Policy:
    """Resolve and normalise: the one place where names become addresses. Raises FirewallError on bad input.
    failed (the refresh job): each family is asked for separately, and a family whose query failed is recorded
    there (family -> why) instead of failing the run; its networks in the Policy are then incomplete."""
    if failed is not None:
        def lookup(name: str) -> t.List[Network]:
            return resolve_each_family(name, resolver, failed)
    else:
        def lookup(name: str) -> t.List[Network]:
            return resolve(name, resolver)

    if not spec.ports:
        raise FirewallError("ports must name at least one TCP port (e.g. [8883, 443])")
    ports = tuple(sorted({check_port(p, "ports") for p in spec.ports}))
    extra = [ipaddress.ip_network(n) for n in normalise_destinations(spec.extra_destinations)]
    groups: t.List[Group] = []
    sources: t.Dict[str, t.Any] = {}
    direct = spec.via_proxy is None or spec.also_direct
    if direct:
        resolved = lookup(spec.host) if spec.resolve_host else []
        sources[spec.host] = sorted(n.with_prefixlen for n in resolved)
        nets = collapse([*resolved, *extra])
        groups.append(Group("epns", ports, nets["ipv4"], nets["ipv6"]))
    if spec.via_proxy is not None:
        host, port = split_host_port(spec.via_proxy)
        resolved = lookup(host)
        sources[host] = sorted(n.with_prefixlen for n in resolved)
        nets = collapse(resolved)
        groups.append(Group("proxy", (port,), nets["ipv4"], nets["ipv6"]))
    return Policy(tuple(groups), sources)


# -- what a backend owns ---------------------------------------------------------------------------------------
@dataclass
class State:
    """Everything one backend owns on the host, in a comparable form.

    containers: tables, chains, ipsets' definitions and hooks into foreign chains: id -> one line of spec text.
    sets:       address sets: id -> set of canonical CIDR strings (the only thing a refresh changes).
    rules:      rules: id -> human text; the id carries the rule's comment, so equal ids mean equal rules.
    meta:       backend-private facts needed to act (rule handles, foreign chains found); never compared.
    """

    containers: t.Dict[str, str] = field(default_factory=dict)
    sets: t.Dict[str, t.FrozenSet[str]] = field(default_factory=dict)
    rules: t.Dict[str, str] = field(default_factory=dict)
    meta: t.Dict[str, t.Any] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        return not (self.containers or self.sets or self.rules)

    def render(self) -> str:
        """Canonical text, one object per line: the before/after of --diff."""
        lines: t.List[str] = []
        for key in sorted(self.containers):
            lines.append(f"{key}: {self.containers[key]}".rstrip())
        for key in sorted(self.sets):
            elements = sorted(self.sets[key], key=element_sort_key)
            lines.append(f"set {key}:" + ("" if elements else " (empty)"))
            lines.extend(f"  {e}" for e in elements)
        for key in sorted(self.rules):
            lines.append(f"rule {key}: {self.rules[key]}")
        return "\n".join(lines) + ("\n" if lines else "")

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"containers": dict(sorted(self.containers.items())),
                "sets": {k: sorted(v, key=element_sort_key) for k, v in sorted(self.sets.items())},
                "rules": dict(sorted(self.rules.items()))}

    @classmethod
    def from_dict(cls, data: t.Mapping[str, t.Any], meta: t.Optional[t.Dict[str, t.Any]] = None) -> State:
        return cls(dict(data.get("containers", {})), {k: frozenset(v) for k, v in data.get("sets", {}).items()},
                   dict(data.get("rules", {})), dict(meta or {}))


def element_sort_key(element: str) -> t.Tuple[int, int, int]:
    network = ipaddress.ip_network(element, strict=False)
    return network.version, int(network.network_address), network.prefixlen


@dataclass
class SetChange:
    added: t.List[str]
    removed: t.List[str]


@dataclass
class Diff:
    containers_added: t.Dict[str, str] = field(default_factory=dict)
    containers_removed: t.Dict[str, str] = field(default_factory=dict)
    sets_added: t.Dict[str, t.List[str]] = field(default_factory=dict)     # new sets and their elements
    sets_removed: t.Dict[str, t.List[str]] = field(default_factory=dict)
    sets_changed: t.Dict[str, SetChange] = field(default_factory=dict)     # element updates only
    rules_added: t.Dict[str, str] = field(default_factory=dict)
    rules_removed: t.Dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any((self.containers_added, self.containers_removed, self.sets_added, self.sets_removed,
                    self.sets_changed, self.rules_added, self.rules_removed))

    @property
    def sets_only(self) -> bool:
        """True when only set contents change: an address update, not a rebuild."""
        return bool(self.sets_changed) and not any((self.containers_added, self.containers_removed,
                                                    self.sets_added, self.sets_removed, self.rules_added,
                                                    self.rules_removed))

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {
            "containers": {"added": sorted(self.containers_added), "removed": sorted(self.containers_removed)},
            "sets": {"added": self.sets_added, "removed": self.sets_removed,
                     "changed": {k: {"added": v.added, "removed": v.removed} for k, v in self.sets_changed.items()}},
            "rules": {"added": sorted(self.rules_added), "removed": sorted(self.rules_removed)},
        }


def _diff_texts(current: t.Mapping[str, str], desired: t.Mapping[str, str], added: t.Dict[str, str],
                removed: t.Dict[str, str]) -> None:
    """Containers and rules, id -> text: a changed text is the old one removed and the new one added."""
    for key, text in desired.items():
        if current.get(key) != text:
            added[key] = text
            if key in current:
                removed[key] = current[key]
    for key, text in current.items():
        if key not in desired:
            removed[key] = text


def diff(current: State, desired: State) -> Diff:
    result = Diff()
    _diff_texts(current.containers, desired.containers, result.containers_added, result.containers_removed)
    for key, elements in desired.sets.items():
        if key not in current.sets:
            result.sets_added[key] = sorted(elements, key=element_sort_key)
        elif current.sets[key] != elements:
            result.sets_changed[key] = SetChange(sorted(elements - current.sets[key], key=element_sort_key),
                                                 sorted(current.sets[key] - elements, key=element_sort_key))
    for key, elements in current.sets.items():
        if key not in desired.sets:
            result.sets_removed[key] = sorted(elements, key=element_sort_key)
    _diff_texts(current.rules, desired.rules, result.rules_added, result.rules_removed)
    return result
