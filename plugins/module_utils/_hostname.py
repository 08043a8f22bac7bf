# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The one host-name rule of the collection: a DNS name, or (where the option allows it) an IPv4 or IPv6 address.
Stdlib only: it runs on the managed host (Python 3.8+, whose ipaddress does not know IPv6 zone ids yet)."""
from __future__ import annotations

import ipaddress
import re
import typing as t

# Letters, digits, '_' (found in real internal names) and '-', not at either end of a label.
_LABEL_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_ZONE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NAME_RULE = ("a DNS name such as epns.eset.com (labels of letters, digits, '_' and '-', 1 to 63 characters, "
              "not beginning or ending with '-', the last not all digits; 253 characters at most)")


class HostNameError(ValueError):
    """A value that is not a host name (or address) as the option accepts it; the message names the value, the
    problem and what is accepted."""


def check_host(value: t.Any, what: str, addresses: bool = True, brackets: bool = False, zone_ids: bool = False,
               port_option: t.Optional[str] = None) -> str:
    """value in normal form (a name in lower case without its trailing dot, an address as ipaddress writes it), or
    HostNameError. addresses: IPv4 and IPv6 addresses are accepted too; brackets: an IPv6 address may be written
    [2001:db8::1]; zone_ids: an IPv6 address may carry a zone (fe80::1%eth0); port_option: the option a port
    belongs in, named when value carries one."""
    accepted = _accepted(addresses, brackets, zone_ids)
    if not isinstance(value, str) or not value:
        raise HostNameError(f"{what}: {value!r} is not a valid host name{' or address' if addresses else ''}; "
                            f"accepted: {accepted}")
    address = _address(value, brackets, zone_ids) if addresses else None
    if address is not None:
        return address
    if _is_name(value):
        return value.rstrip(".").lower()
    raise HostNameError(_why_not(value, what, addresses, port_option) + f"; accepted: {accepted}")


def _accepted(addresses: bool, brackets: bool, zone_ids: bool) -> str:
    if not addresses:
        return _NAME_RULE
    choices = ((brackets, "in brackets or bare"), (zone_ids, "with or without a zone such as %eth0"))
    extras = [text for allowed, text in choices if allowed]
    return _NAME_RULE + ", or an IPv4 or IPv6 address" + (f" ({', '.join(extras)})" if extras else "")


def _address(value: str, brackets: bool, zone_ids: bool) -> t.Optional[str]:
    """value's address in normal form, or None when value is not an address literal."""
    text = value[1:-1] if brackets and value.startswith("[") and value.endswith("]") and ":" in value else value
    zone = ""
    if "%" in text:
        text, zone = text.split("%", 1)
        if not (zone_ids and ":" in text and _ZONE_RE.match(zone)):
            return None
        zone = "%" + zone
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if zone and address.version != 6:
        return None
    return str(address) + zone


def _is_name(value: str) -> bool:
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    return (0 < len(name) <= 253 and all(_LABEL_RE.match(label) for label in labels)
            and not labels[-1].isdigit())


def _why_not(value: str, what: str, addresses: bool, port_option: t.Optional[str]) -> str:
    kind = "host name or address" if addresses else "host name"
    start = f"{what}: {value!r} is not a {kind}"
    if "://" in value:
        return f"{start}: write it without a scheme (not {value.split('://')[0]}://...)"
    if "/" in value:
        return f"{start}: write it without a path"
    if value.count(":") == 1 and value.rpartition(":")[2].isdigit():
        return f"{start}: write it without a port" + (f"; set {port_option}" if port_option else "")
    return f"{what}: {value!r} is not a valid {kind}"
