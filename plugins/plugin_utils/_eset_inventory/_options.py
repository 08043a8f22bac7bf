# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The inventory's own options (not the connection ones), checked: a bad value is named with what is accepted."""
from __future__ import annotations

import ipaddress
import re
import typing as t
from dataclasses import dataclass

# operatingSystem.familyId, "well known values" of the ESET Connect spec (v1OperatingSystem); 0 and any other
# value are "unknown".
OS_FAMILIES = {1: "windows", 2: "linux", 3: "macos", 4: "android", 5: "windows_mobile", 6: "symbian", 7: "unix"}
UNKNOWN_FAMILY = "unknown"
FAMILY_NAMES = (*OS_FAMILIES.values(), UNKNOWN_FAMILY)
# The EPNS probe and the roles run on Linux hosts only.
PROBE_FAMILIES = ("linux",)
CLONE_MODES = ("newest", "all")
DEFAULT_HOST_SOURCES = ("primaryLocalIpAddress", "displayName")
DEFAULT_GROUP_PREFIX = "eset_"
GROUP_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]*$")
FIELD_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$")

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class HostSource:
    """One entry of ansible_host_sources: a device field path, or an expression over the host's variables."""

    field: t.Optional[str] = None
    expression: t.Optional[str] = None

    def label(self) -> str:
        return self.field if self.field else f"expression {self.expression!r}"


@dataclass(frozen=True)
class InventoryOptions:
    host_sources: t.Tuple[HostSource, ...] = tuple(HostSource(field=f) for f in DEFAULT_HOST_SOURCES)
    exclude: t.Tuple[Network, ...] = ()
    group_paths: t.Tuple[str, ...] = ()
    os_families: t.Tuple[str, ...] = ()
    clones: str = "newest"
    group_prefix: str = DEFAULT_GROUP_PREFIX


def _host_source(entry: t.Any) -> HostSource:
    if isinstance(entry, str) and FIELD_PATH_RE.match(entry):
        return HostSource(field=entry)
    if isinstance(entry, t.Mapping) and set(entry) == {"expression"} and isinstance(entry["expression"], str) \
            and entry["expression"].strip():
        return HostSource(expression=entry["expression"])
    raise ValueError(f"ansible_host_sources: {entry!r} is neither a device field path (primaryLocalIpAddress, "
                     "hardwareProfiles.0.networkAdapters.0.caption) nor {expression: '<Jinja2 expression>'}")


def _network(entry: t.Any) -> Network:
    try:
        return ipaddress.ip_network(str(entry).strip(), strict=False)
    except ValueError:
        raise ValueError(f"ansible_host_exclude: {entry!r} is not a network in CIDR notation "
                         "(10.8.0.0/16, 172.17.0.0/16, fd00::/8)") from None


def _strings(raw: t.Mapping[str, t.Any], name: str) -> t.List[t.Any]:
    value = raw.get(name)
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, t.Sequence):
        raise ValueError(f"{name}: {value!r} is not a list")
    return list(value)


def inventory_options(raw: t.Mapping[str, t.Any]) -> InventoryOptions:
    """The options of the inventory file, checked; ValueError names the first bad value."""
    sources = tuple(_host_source(e) for e in _strings(raw, "ansible_host_sources")) or InventoryOptions.host_sources
    families = tuple(str(f) for f in _strings(raw, "os_families"))
    wrong = [f for f in families if f not in FAMILY_NAMES]
    if wrong:
        raise ValueError("os_families: {} not one of {}".format(
            ", ".join(repr(f) for f in wrong), ", ".join(FAMILY_NAMES)))
    clones = raw.get("clones") or "newest"
    if clones not in CLONE_MODES:
        raise ValueError(f"clones: {clones!r} is not one of {', '.join(CLONE_MODES)}")
    prefix = raw.get("group_prefix")
    prefix = DEFAULT_GROUP_PREFIX if prefix is None else str(prefix)
    if not GROUP_PREFIX_RE.match(prefix):
        raise ValueError(f"group_prefix: {prefix!r} may hold only letters, digits and _ (an Ansible group name)")
    paths = tuple(str(p).strip() for p in _strings(raw, "group_paths"))
    if any(not p.strip("/") for p in paths):
        raise ValueError(f"group_paths: {list(paths)!r} holds an empty path")
    exclude = tuple(_network(e) for e in _strings(raw, "ansible_host_exclude"))
    return InventoryOptions(host_sources=sources, exclude=exclude, group_paths=paths,
                            os_families=families, clones=clones, group_prefix=prefix)
