"""device-management: /v1/device_groups and /v1/devices (read side; enough to resolve assignment targets)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Tuple

from .call import Call
from .errors import bad, not_found
from .paging import paginate

if TYPE_CHECKING:
    from .server import Emulator

FUNCTIONALITY = ("DEVICE_FUNCTIONALITY_STATUS_UNSPECIFIED", "DEVICE_FUNCTIONALITY_STATUS_OK",
                 "DEVICE_FUNCTIONALITY_STATUS_ATTENTION_RECOMMENDED", "DEVICE_FUNCTIONALITY_STATUS_ATTENTION_REQUIRED")


# A seed-only field of a group: the device uuids of a dynamic group (members not by parentGroupUuid). The API has
# no documented field that tells a dynamic group from a static one, so the listing never shows it.
DYNAMIC_MEMBERS = "dynamicMembers"


def list_groups(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        shown = [{k: v for k, v in g.items() if k != DYNAMIC_MEMBERS} for g in emu.state.data["groups"]]
        chunk, token = paginate(call, shown)
        return 200, call.render({"deviceGroups": chunk, "nextPageToken": token})


def group_devices(emu: Emulator, call: Call) -> Tuple[int, Any]:
    group_uuid = call.params["uuid"]
    recurse = call.boolean("recurseSubgroups") or False
    with emu.state.lock:
        if emu.state.find("groups", group_uuid) is None:
            raise not_found(f"device group {group_uuid} not found")
        groups = set(emu.state.subgroups(group_uuid) if recurse else [group_uuid])
        dynamic = {m for g in emu.state.data["groups"] if g["uuid"] in groups for m in g.get(DYNAMIC_MEMBERS, [])}
        members = [{"uuid": d["uuid"], "displayName": d["displayName"], "groupUuid": d["parentGroupUuid"]}
                   for d in emu.state.data["devices"] if d.get("parentGroupUuid") in groups or d["uuid"] in dynamic]
        chunk, token = paginate(call, members)
        return 200, call.render({"devices": chunk, "nextPageToken": token, "totalSize": len(members)})


def list_devices(emu: Emulator, call: Call) -> Tuple[int, Any]:
    names = [n for n in call.query.get("displayNames", []) if n]
    status = call.one("functionalityStatus") or FUNCTIONALITY[0]
    if status not in FUNCTIONALITY:
        raise bad(f"functionalityStatus: invalid value {status!r}")
    muted = call.boolean("isMuted")
    with emu.state.lock:
        items = [d for d in emu.state.data["devices"]
                 if (not names or d["displayName"] in names)
                 and (status == FUNCTIONALITY[0] or d.get("functionalityStatus") == status)
                 and (muted is None or bool(d.get("isMuted")) == muted)]
        chunk, token = paginate(call, items)
        return 200, call.render({"devices": chunk, "nextPageToken": token})


def get_device(emu: Emulator, call: Call) -> Tuple[int, Any]:
    with emu.state.lock:
        device = emu.state.find("devices", call.params["uuid"])
        if device is None:
            raise not_found(f"device {call.params['uuid']} not found")
        return 200, call.render({"device": device})
