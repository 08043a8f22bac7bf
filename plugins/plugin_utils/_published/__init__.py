# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# ESET's published EPNS addresses, controller side: the dated, sourced data file beside this package
# (epns_addresses.yml, KB332 as an unverified transcription) or a user's file of the same layout, loaded and
# checked (load_published), and the resolved addresses that fall outside it (outside). The report only warns with
# it; epns_firewall takes its networks as extra_destinations by name (PUBLISHED_NAME).
from __future__ import annotations

import datetime
import ipaddress
import os
import typing as t

import yaml

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "epns_addresses.yml")
# The name epns_firewall's extra_destinations accepts: `eset_published` or `eset_published:/path/file.yml`.
PUBLISHED_NAME = "eset_published"
LAYOUT = "a YAML mapping with date (YYYY-MM-DD), source (text) and networks (a list of CIDRs)"


class PublishedError(ValueError):
    """A published-addresses file that cannot be read or does not have the expected layout."""


class Published(t.NamedTuple):
    networks: t.Tuple[Network, ...]
    date: str
    source: str
    path: str


def load_published(path: t.Optional[str] = None) -> Published:
    """The published list from `path` (a user's file) or, without one, the collection's data file."""
    chosen = os.path.abspath(os.path.expanduser(path)) if path else DEFAULT_PATH
    try:
        with open(chosen, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise PublishedError(f"published addresses file {chosen!r} cannot be read ({exc.strerror}); "
                             f"expected {LAYOUT}") from None
    except yaml.YAMLError as exc:
        raise PublishedError(f"published addresses file {chosen!r} is not valid YAML "
                             f"({str(exc).splitlines()[0]}); expected {LAYOUT}") from None
    if not isinstance(data, dict):
        raise PublishedError(f"published addresses file {chosen!r} holds {type(data).__name__}; expected {LAYOUT}")
    return Published(networks=_networks(chosen, data.get("networks")), date=_date(chosen, data.get("date")),
                     source=_source(chosen, data.get("source")), path=chosen)


def outside(published: Published, addresses: t.Iterable[str]) -> t.List[str]:
    """The addresses (each once, in the order given) that no published network contains; text that is no IP
    address is left out: it says nothing about the list."""
    found: t.List[str] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            continue
        if str(address) in found or any(address in net for net in published.networks if net.version == address.version):
            continue
        found.append(str(address))
    return found


def _networks(path: str, value: t.Any) -> t.Tuple[Network, ...]:
    if not isinstance(value, list) or not value:
        raise PublishedError(f"published addresses file {path!r}: networks is {value!r}; expected a non-empty "
                             "list of CIDRs such as 91.228.165.144/30")
    networks = []
    for entry in value:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=True))
        except ValueError as exc:
            raise PublishedError(f"published addresses file {path!r}: network {entry!r} is not a CIDR without "
                                 f"host bits ({exc}); expected e.g. 91.228.165.144/30 or 2001:db8::/32") from None
    return tuple(networks)


def _date(path: str, value: t.Any) -> str:
    text = value.isoformat() if isinstance(value, datetime.date) else str(value or "")
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise PublishedError(f"published addresses file {path!r}: date is {value!r}; expected the list's "
                             "revision as YYYY-MM-DD") from None
    return text


def _source(path: str, value: t.Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PublishedError(f"published addresses file {path!r}: source is {value!r}; expected one line saying "
                             "where the list comes from")
    return " ".join(value.split())
