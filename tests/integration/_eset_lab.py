"""The lab as ESET PROTECT knows it: its hosts registered as devices in the API emulator, and the inventory
sources that make ESET PROTECT the inventory (the plugin's configuration, and the lab's connection variables that
an AWX machine credential would otherwise give).

Groups (under the emulator's seeded `All` tree):
  All/Linux/Agents          the lab agents (inventory group `agents`)
  All/Linux/Branch agents   the agents behind the second router (`wol_agents`)
  All/Linux/ESET PROTECT    the ESET PROTECT server host (`servers`)
  All/Linux/Proxies         the managed squid and Apache hosts (`proxies`)
  All/Windows/Laptops, All/Apple/Macs: stand-ins for the agents no Linux module can probe, at addresses nothing
  answers on (the roles must skip them without connecting)
"""
from __future__ import annotations

import typing as t
import uuid
from pathlib import Path

import yaml

_NS = uuid.UUID("0b7e2c51-4f3a-4c8e-9d61-5a2f8e7c1d90")
NOWHERE = ("198.18.0.250", "198.18.0.251", "198.18.0.252")  # inside the lab's range, no host has them
LAB_GROUPS = {"agents": "All/Linux/Agents", "wol_agents": "All/Linux/Branch agents",
              "servers": "All/Linux/ESET PROTECT", "proxies": "All/Linux/Proxies"}
STAND_INS = [("win-lab-01", "All/Windows/Laptops", 1, "Microsoft Windows 11 Pro", NOWHERE[0]),
             ("win-lab-02", "All/Windows/Laptops", 1, "Microsoft Windows 10 Enterprise", NOWHERE[1]),
             ("mac-lab-01", "All/Apple/Macs", 3, "macOS Sonoma", NOWHERE[2])]
FAMILY_OS = {2: "Debian GNU/Linux 12"}
AGENT_VERSION = "12.1.1234.0"


def _uid(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


def _groups(existing: t.Mapping[str, str]) -> t.List[t.Dict[str, t.Any]]:
    """The groups to add, parents first; `existing` maps the emulator's name paths to their uuids."""
    paths = sorted({*LAB_GROUPS.values(), *(path for _name, path, *_rest in STAND_INS)})
    known = dict(existing)
    added = []
    for path in paths:
        parts = path.split("/")
        for depth in range(2, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub in known:
                continue
            known[sub] = _uid("group:" + sub)
            added.append({"uuid": known[sub], "displayName": parts[depth - 1],
                          "parentGroupUuid": known["/".join(parts[:depth - 1])], "isSecurityGroup": False})
    return added


def _device(name: str, group_uuid: str, family: int, os_name: str, address: str) -> t.Dict[str, t.Any]:
    return {"uuid": _uid("device:" + name), "displayName": name, "parentGroupUuid": group_uuid,
            "primaryLocalIpAddress": address, "publicIpAddress": "203.0.113.10",
            "lastSyncTime": "2026-12-03T05:00:00Z", "functionalityStatus": "DEVICE_FUNCTIONALITY_STATUS_OK",
            "operatingSystem": {"displayName": os_name, "familyId": family},
            "deployedComponents": [{"displayName": "ESET Management Agent", "name": "ESET_MANAGEMENT_AGENT",
                                    "version": {"name": AGENT_VERSION}}],
            "tags": ["lab"], "isMuted": False}


def lab_members(lab: t.Any) -> t.Dict[str, t.List[str]]:
    """Inventory group -> the lab hosts ESET PROTECT lists in it."""
    return {"agents": list(lab.agents), "wol_agents": list(lab.lan2_agents), "servers": [lab.server],
            "proxies": sorted(lab.managed_proxy_urls)}


def seed_payload(lab: t.Any, group_paths: t.Mapping[str, str]) -> t.Dict[str, t.Any]:
    """The `POST /_emulator/seed` body that registers the lab: `group_paths` maps the emulator's existing name paths
    to their uuids (from its state), so the new groups hang in its tree."""
    groups = _groups(group_paths)
    uuids = {**{path: _uid("group:" + path) for path in {*LAB_GROUPS.values(), *(p for _n, p, *_r in STAND_INS)}},
             **group_paths}  # a group the emulator already has keeps its uuid
    devices = [_device(host, uuids[LAB_GROUPS[group]], 2, FAMILY_OS[2], lab.hosts[host].v4[0])
               for group, hosts in lab_members(lab).items() for host in hosts]
    devices += [_device(name, uuids[path], family, os_name, address)
                for name, path, family, os_name, address in STAND_INS]
    return {"groups": groups, "devices": devices}


def group_paths_of(state: t.Mapping[str, t.Any]) -> t.Dict[str, str]:
    """Name path -> uuid for the groups in an emulator state snapshot (`GET /_emulator/state`)."""
    by_uuid = {g["uuid"]: g for g in state["groups"]}

    def path(group: t.Mapping[str, t.Any]) -> str:
        parent = by_uuid.get(group.get("parentGroupUuid") or "")
        return f"{path(parent)}/{group['displayName']}" if parent else str(group["displayName"])

    return {path(g): g["uuid"] for g in state["groups"]}


def inventory_sources(directory: Path, lab: t.Any, connection: t.Mapping[str, t.Any]) -> t.List[Path]:
    """Two inventory sources: the lab's connection variables for every host, and the plugin's configuration
    (`connection`: its connection options), whose `groups` rebuild the groups the playbooks target."""
    directory.mkdir(parents=True, exist_ok=True)
    variables = {k: v.strip("'") if isinstance(v, str) else v for k, v in lab.vars.items()}
    lab_vars = directory / "lab-vars.yml"
    lab_vars.write_text(yaml.safe_dump({"all": {"vars": variables}}))
    config = {"plugin": "protectnet.epns.eset_protect", **connection,
              "group_paths": sorted({*LAB_GROUPS.values(), *(p for _n, p, *_r in STAND_INS)}),
              "groups": {group: f"eset_group_path == {path!r}" for group, path in LAB_GROUPS.items()}}
    plugin = directory / "lab.eset_protect.yml"
    plugin.write_text(yaml.safe_dump(config, sort_keys=False))
    return [lab_vars, plugin]
