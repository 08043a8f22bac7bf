# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Devices that are one machine listed more than once (cloned, or re-imaged and registered again).

Two devices are one machine when they share a hardware identity (the BIOS uuid; the BIOS serial number with its
manufacturer; a MAC address) or, after re-imaging, the same display name at the same primaryLocalIpAddress.
Placeholder values that many machines report (all-zero uuids, "To be filled by O.E.M.", locally administered or
zero MAC addresses, which virtual, VPN and container adapters use) identify nothing and are ignored.
"""
from __future__ import annotations

import datetime
import re
import typing as t

from ._device import field_value

PLACEHOLDERS = {"", "0", "none", "null", "n/a", "na", "default string", "to be filled by o.e.m.",
                "system serial number", "not specified", "not applicable", "unknown", "invalid",
                "123456789", "chassis serial number"}
MAC_RE = re.compile(r"^[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", re.IGNORECASE)


def _meaningful(value: t.Any) -> t.Optional[str]:
    text = str(value or "").strip()
    if text.lower() in PLACEHOLDERS or len(set(text.replace("-", "").lower())) <= 1:
        return None
    return text


def _mac(value: t.Any) -> t.Optional[str]:
    digits = re.sub(r"[^0-9a-f]", "", str(value or "").lower())
    if not MAC_RE.match(digits) or len(set(digits)) == 1 or int(digits[1], 16) & 2:
        return None  # malformed, all one digit, or locally administered (second bit of the first octet)
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def identities(device: t.Mapping[str, t.Any]) -> t.List[str]:
    """What says which machine this device is, each as a readable text (``BIOS uuid 99AA...``)."""
    found: t.Set[str] = set()
    for profile in device.get("hardwareProfiles") or []:
        if not isinstance(profile, t.Mapping):
            continue
        bios: t.Mapping[str, t.Any] = profile["bios"] if isinstance(profile.get("bios"), t.Mapping) else {}
        uuid = _meaningful(bios.get("uuid"))
        if uuid:
            found.add(f"BIOS uuid {uuid.upper()}")
        serial, maker = _meaningful(bios.get("serialNumber")), _meaningful(bios.get("manufacturer"))
        if serial and maker:
            found.add(f"BIOS serial {serial} ({maker})")
        for adapter in profile.get("networkAdapters") or []:
            mac = _mac(adapter.get("macAddress")) if isinstance(adapter, t.Mapping) else None
            if mac:
                found.add(f"MAC {mac}")
    name, address = str(device.get("displayName") or "").strip(), field_value(device, "primaryLocalIpAddress")
    if name and _meaningful(address):
        found.add(f"display name {name!r} at {address}")
    return sorted(found)


def sync_time(device: t.Mapping[str, t.Any]) -> float:
    """lastSyncTime (RFC 3339; protobuf JSON writes up to nine fraction digits) as a timestamp; 0 when absent."""
    match = RFC3339_RE.match(str(device.get("lastSyncTime") or "").strip())
    if not match:
        return 0.0
    fraction = (match.group(2) or ".0")[:7]
    zone = match.group(3) or "Z"
    zone = "+00:00" if zone.upper() == "Z" else zone
    return datetime.datetime.fromisoformat(match.group(1) + fraction + zone).timestamp()


def clone_sets(devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Tuple[str, t.List[int]]]:
    """``(the identity they share, device indexes newest first)`` for each machine listed more than once."""
    parent = list(range(len(devices)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: t.Dict[str, int] = {}
    for index, device in enumerate(devices):
        for identity in identities(device):
            if identity in first:
                parent[root(index)] = root(first[identity])
            else:
                first[identity] = index
    members: t.Dict[int, t.List[int]] = {}
    for index in range(len(devices)):
        members.setdefault(root(index), []).append(index)
    out = []
    for group in members.values():
        if len(group) < 2:
            continue
        counts: t.Dict[str, int] = {}
        for member in group:
            for identity in identities(devices[member]):
                counts[identity] = counts.get(identity, 0) + 1
        shared = sorted(identity for identity, count in counts.items() if count > 1)
        group.sort(key=lambda m: (-sync_time(devices[m]), str(devices[m].get("uuid") or "")))
        out.append((shared[0] if shared else "a chain of shared identities", group))
    return sorted(out, key=lambda item: str(devices[item[1][0]].get("uuid") or ""))
