# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# ProxyRequest: what one proxy_connect_ports run is asked to do; its validation, and durations.
from __future__ import annotations

import ipaddress
import typing as t
from dataclasses import dataclass, field

from .._hostname import HostNameError
from .._hostname import check_host as check_host_name

MANAGED_NAME = "protectnet_epns"
BEGIN_MARK = "# BEGIN protectnet.epns managed include (proxy_connect_ports): do not edit between the markers"
END_MARK = "# END protectnet.epns managed include"
SNIPPET_HEADER = ("# Managed by protectnet.epns (module proxy_connect_ports): what ESET's push notification service\n"
                  "# (EPNS) needs from this proxy. Rewritten on every run; put local changes elsewhere.\n")


class ProxyError(Exception):
    """A clear, user-facing failure; nothing was changed unless the message says so."""


@dataclass(frozen=True)
class ProxyRequest:
    """What one proxy_connect_ports run is asked to do, validated (the module builds it from its options)."""

    state: str = "present"
    proxy: str = "auto"
    ports: t.Tuple[int, ...] = ()
    allowed_sources: t.Tuple[str, ...] = ()
    allow_connect_to_any_host: bool = False  # the one wider opening, asked for by name
    epns_host: str = ""
    destinations: t.Tuple[str, ...] = ()
    # The ESET PROTECT server (name or address) the agents replicate to, on its agent port; "" for none.
    eset_server: str = ""
    eset_server_port: int = 2222
    raise_idle_timeouts: bool = False
    idle_timeout: int = 3600
    connection_lifetime: int = 604800
    config_path: t.Optional[str] = None
    snippet_path: t.Optional[str] = None
    extra_directives: t.Tuple[str, ...] = ()
    reload: bool = True
    notes: t.List[str] = field(default_factory=list)


def check_ports(ports: t.Sequence[int]) -> t.Tuple[int, ...]:
    if not ports:
        raise ProxyError("ports must not be empty (default: 8883 and 443)")
    out: t.List[int] = []
    for port in ports:
        if not 1 <= int(port) <= 65535:
            raise ProxyError(f"port {port} is out of range (1-65535)")
        if port not in out:
            out.append(int(port))
    return tuple(out)


def check_networks(values: t.Sequence[str], what: str) -> t.Tuple[str, ...]:
    """IPv4/IPv6 addresses or CIDRs, normalised; a network with host bits set is refused with what it meant."""
    out: t.List[str] = []
    for raw in values:
        text = str(raw).strip()
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            try:
                meant = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ProxyError(f"{what}: {raw!r} is not an IPv4/IPv6 address or network ({exc})") from None
            raise ProxyError(f"{what}: {raw!r} has host bits set; did you mean {meant}?") from None
        if str(net) not in out:
            out.append(str(net))
    return tuple(out)


def check_seconds(value: int, what: str, minimum: int) -> int:
    if not minimum <= int(value) <= 31536000:
        raise ProxyError(f"{what} must be {minimum} to 31536000 seconds, not {value}")
    return int(value)


def check_host(host: str) -> str:
    """epns_host in normal form; a name only (EPNS addresses belong in destinations)."""
    try:
        return check_host_name(host.strip(), "epns_host", addresses=False)
    except HostNameError as exc:
        raise ProxyError(str(exc)) from None


def check_eset_server(host: str) -> str:
    """eset_server in normal form: the name or address the agents were installed with; "" for none."""
    if not host.strip():
        return ""
    try:
        return check_host_name(host.strip(), "eset_server", addresses=True, brackets=True,
                               port_option="eset_server_port")
    except HostNameError as exc:
        raise ProxyError(str(exc)) from None


def check_port(port: int, what: str) -> int:
    if not 1 <= int(port) <= 65535:
        raise ProxyError(f"{what}: {port} is out of range (1-65535)")
    return int(port)


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_directives(lines: t.Sequence[str]) -> t.Tuple[str, ...]:
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ProxyError("extra_directives: one directive per item, without line breaks")
    return tuple(lines)


# -- durations ---------------------------------------------------------------------------------------------------
_UNITS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
          "fortnight": 1209600, "month": 2592000, "year": 31557790.5, "decade": 315577905}


def squid_seconds(text: str) -> t.Optional[float]:
    """squid's `<number> <unit>` (`15 minutes`, `1 day`; a bare number is in seconds); None when unparsable."""
    parts = text.split()
    if not parts:
        return None
    try:
        number = float(parts[0])
    except ValueError:
        return None
    if len(parts) == 1:
        return number
    unit = parts[1].lower()
    unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNITS else unit
    if unit not in _UNITS:
        return None
    return number * _UNITS[unit]


def human(seconds: t.Optional[float]) -> str:
    if seconds is None:
        return "unknown"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{int(seconds) if float(seconds).is_integer() else seconds} seconds"


@dataclass
class Limit:
    """One idle or lifetime limit as the proxy applies it to a CONNECT tunnel."""

    name: str
    value: str
    seconds: t.Optional[float]
    source: str  # "file:line" or "default"
    kind: str  # idle | lifetime
    explanation: str

    def as_dict(self) -> t.Dict[str, t.Any]:
        return {"name": self.name, "value": self.value, "seconds": self.seconds,
                "human": human(self.seconds) if self.seconds is not None else self.value,
                "source": self.source, "kind": self.kind, "explanation": self.explanation}
