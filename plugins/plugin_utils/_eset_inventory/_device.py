# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""One device as the API lists it (ESET Connect v1Device): its fields, OS family, agent version, host variables,
and whether a value can be an ansible_host."""
from __future__ import annotations

import ipaddress
import re
import typing as t

from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import GroupIndex
from ansible_collections.protectnet.epns.plugins.module_utils._hostname import HostNameError, check_host

from ._options import OS_FAMILIES, PROBE_FAMILIES, UNKNOWN_FAMILY, Network

# ASSUMPTION (no ESET document names it): the Management Agent is the deployedComponents entry with this name or
# display name. The emulator's seed makes the same guess; change both if a real server says otherwise.
AGENT_COMPONENT_NAMES = ("ESET_MANAGEMENT_AGENT", "ESET Management Agent")
# Fields that identify a device to the server: never copied into host variables or the cache.
PRIVATE_FIELDS = ("deviceToken",)
HOST_CHARACTERS_RE = re.compile(r"[^A-Za-z0-9._-]")
GROUP_CHARACTERS_RE = re.compile(r"[^A-Za-z0-9_]")


def without_private_fields(device: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return {key: value for key, value in device.items() if key not in PRIVATE_FIELDS}


def field_value(device: t.Mapping[str, t.Any], path: str) -> t.Any:
    """The value at a dotted field path (``hardwareProfiles.0.networkAdapters.0.caption``), or None."""
    value: t.Any = device
    for part in path.split("."):
        if isinstance(value, t.Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def os_family(device: t.Mapping[str, t.Any]) -> str:
    """From operatingSystem.familyId, a number or (protobuf JSON's int64) a decimal string."""
    family_id = field_value(device, "operatingSystem.familyId")
    try:
        return OS_FAMILIES.get(int(str(family_id).strip()), UNKNOWN_FAMILY)
    except ValueError:
        return UNKNOWN_FAMILY


def _version_text(version: t.Any) -> t.Optional[str]:
    if isinstance(version, str):
        return version or None
    if not isinstance(version, t.Mapping):
        return None
    if version.get("name"):
        return str(version["name"])
    numbers = [version.get(part) for part in ("major", "minor", "patch")]
    if all(n is None for n in numbers):
        return None
    return ".".join(str(n or 0) for n in numbers)


def agent_version(device: t.Mapping[str, t.Any]) -> t.Optional[str]:
    for component in device.get("deployedComponents") or []:
        if isinstance(component, t.Mapping) and (component.get("name") in AGENT_COMPONENT_NAMES
                                                 or component.get("displayName") in AGENT_COMPONENT_NAMES):
            return _version_text(component.get("version"))
    return None


def host_variables(device: t.Mapping[str, t.Any], groups: GroupIndex) -> t.Dict[str, t.Any]:
    group_uuid = str(device.get("parentGroupUuid") or "")
    family = os_family(device)
    tags = device.get("tags")
    return {
        "eset_uuid": str(device.get("uuid") or ""),
        "eset_display_name": str(device.get("displayName") or ""),
        "eset_group_path": groups.paths.get(group_uuid, ""),
        "eset_group_uuid": group_uuid,
        "eset_last_sync": device.get("lastSyncTime"),
        "eset_public_ip": device.get("publicIpAddress"),
        "eset_local_ip": device.get("primaryLocalIpAddress"),
        "eset_os_family": family,
        "eset_os_name": field_value(device, "operatingSystem.displayName"),
        "eset_agent_version": agent_version(device),
        "eset_functionality_status": device.get("functionalityStatus"),
        "eset_tags": [str(tag) for tag in tags] if isinstance(tags, list) else [],
        "eset_device_type": device.get("deviceType"),
        "epns_probe_supported": family in PROBE_FAMILIES,
    }


def address_problem(value: t.Any, exclude: t.Sequence[Network]) -> t.Tuple[t.Optional[str], str]:
    """``(usable value, "")``, or ``(None, why not)``: an address outside ``exclude``, or a valid host name."""
    if not isinstance(value, str) or not value.strip():
        return None, "is empty"
    text = value.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        try:
            return check_host(text, "ansible_host", addresses=False), ""
        except HostNameError:
            return None, f"{text!r} is not an address or a host name"
    if address.is_unspecified:
        return None, f"{text} is the unspecified address"
    for network in exclude:
        if address in network:
            return None, f"{text} is in ansible_host_exclude {network}"
    return str(address), ""


def host_name(display_name: str, uuid: str) -> str:
    """The display name in the characters an inventory host name keeps; the uuid when nothing is left."""
    name = HOST_CHARACTERS_RE.sub("_", display_name.strip())
    return name if name.strip("_.-") else uuid


def group_part(display_name: str) -> str:
    return GROUP_CHARACTERS_RE.sub("_", display_name.strip()) or "_"


def unique_names(wanted: t.Mapping[str, str]) -> t.Dict[str, str]:
    """key (a uuid) -> name: every key whose name others want too gets ``_<first 8 characters of the key>``, so
    the result does not depend on the order the server listed them in."""
    counts: t.Dict[str, int] = {}
    for name in wanted.values():
        counts[name] = counts.get(name, 0) + 1
    out = {key: name for key, name in wanted.items() if counts[name] == 1}
    taken = set(out.values())
    for key in sorted(k for k, name in wanted.items() if counts[name] > 1):
        name = f"{wanted[key]}_{key[:8]}"
        if name in taken:
            name = f"{wanted[key]}_{key}"
        taken.add(name)
        out[key] = name
    return out
