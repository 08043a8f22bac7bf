"""The state a fresh emulator starts with: built-in policies, a device-group tree, devices, configuration.

UUIDs are derived from names (uuid5), so they are the same in every run and tests may name them.
The agent product id, the agent's short name and every setting node name below are GUESSES: ESET-FACTS §2
says nobody outside ESET has published them. They are kept here, in one place, for that reason.
"""
from __future__ import annotations

import uuid
from typing import Any, Dict, List, Optional

from .policydata import format1, format2
from .shapes import LEGACY_FEATURE_ID, POLICY_DATA_TYPE

_NS = uuid.UUID("6f1c1b2e-3d4a-4e5f-9a6b-7c8d9e0f1a2b")

AGENT_PRODUCT = "eset.local.products.agent"  # guess (ESET-FACTS §2)
AGENT_SHORT = "agent"  # guess
ENDPOINT_PRODUCT = "eset.local.products.endpoint"  # guess; "endpoint" short name is from ESET's help sample
SERVER_LINUX_PRODUCT = "eset.local.products.efs_unix"  # guess; "efs_unix" short name is from ESET's sample

# deployedComponents entries of generated fleets (fleet.py): (displayName, name). The spec documents the
# fields (v1PlatformComponent) but not their values, so every name here is a GUESS; `id` is CRC32 of the name,
# one algorithm the spec suggests ("can be derived from the name by some algorithm, such as CRC32").
AGENT_COMPONENT = ("ESET Management Agent", "ESET_MANAGEMENT_AGENT")
SECURITY_COMPONENTS = {
    "windows_workstation": ("ESET Endpoint Security", "ESET_ENDPOINT_SECURITY"),
    "windows_server": ("ESET Server Security for Microsoft Windows Server", "ESET_SERVER_SECURITY_WINDOWS"),
    "linux_server": ("ESET Server Security for Linux", "ESET_SERVER_SECURITY_LINUX"),
    "linux_workstation": ("ESET Endpoint Antivirus for Linux", "ESET_ENDPOINT_ANTIVIRUS_LINUX"),
    "mac": ("ESET Endpoint Security for macOS", "ESET_ENDPOINT_SECURITY_MACOS"),
    "android": ("ESET Endpoint Security for Android", "ESET_ENDPOINT_SECURITY_ANDROID"),
}


def uid(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


def leaf(ce_type: int, value: Any) -> Dict[str, Any]:
    return {"ce_flags": 4, "ce_type": ce_type, "ce_value": value}


def _feature(product: str, data: str) -> Dict[str, Any]:
    return {"featureId": LEGACY_FEATURE_ID, "flags": {},
            "configuration": {"@type": POLICY_DATA_TYPE, "product": product, "data": data}}


def _policy(name: str, description: str, product: str, data: str) -> Dict[str, Any]:
    return {"uuid": uid("policy:" + name), "displayName": name, "description": description, "builtIn": True,
            "features": [_feature(product, data)]}


def _agent_connection(minutes: int) -> Dict[str, Any]:
    return {"Connection": {"ce_flags": 0, "ConnectionInterval": leaf(2, minutes * 60)}}


def builtin_policies() -> List[Dict[str, Any]]:
    proxy_tree = {"ProxyConfiguration": {
        "ce_flags": 0, "ProxyConfigurationType": leaf(2, 1),
        "GlobalProxy": {"ce_flags": 0, "UseProxy": leaf(6, 1), "Hostname": leaf(8, "bridge.example.lan"),
                        "Port": leaf(2, 3128)}}}
    return [
        _policy("Connection - Connect every 1 minute", "Built-in ESET Management Agent policy.",
                AGENT_PRODUCT, format1(AGENT_SHORT, _agent_connection(1))),
        _policy("Connection - Connect every 20 minutes", "Built-in ESET Management Agent policy.",
                AGENT_PRODUCT, format1(AGENT_SHORT, _agent_connection(20))),
        _policy("Application reporting - Report all installed applications", "Built-in ESET Management Agent policy.",
                AGENT_PRODUCT, format2(AGENT_SHORT, "13.0", {"Reporting": {
                    "ce_flags": 0, "ReportAllApplications": leaf(6, 1)}})),
        # A long member name puts a '//' table into the archive, like ESET's installer sample.
        _policy("Agent - Use HTTP proxy (ESET Bridge)", "Built-in ESET Management Agent policy.",
                AGENT_PRODUCT, format2(AGENT_SHORT, "13.0", proxy_tree, member="agent.proxy.settings.lzma")),
        _policy("Antivirus - Balanced", "Built-in ESET Endpoint policy.", ENDPOINT_PRODUCT,
                format1("endpoint", {"gui": {"UI_CONFIG": {"ce_flags": 0, "ShowSplash": leaf(9, 1)}}})),
        _policy("Linux server - Balanced", "Built-in ESET Server Security for Linux policy.", SERVER_LINUX_PRODUCT,
                format2("efs_unix", "11.1", {"Plugins": {"ce_flags": 0, "Watchd": {
                    "ce_flags": 0, "Enable": leaf(6, 1)}}})),
    ]


# (name, parent name)
GROUP_TREE = [("All", None), ("Lost & found", "All"), ("Linux", "All"), ("Servers", "Linux"),
              ("Workstations", "Linux"), ("Windows", "All"), ("Laptops", "Windows"), ("Servers", "Windows")]


def _group_uuid(name: str, parent: Any) -> str:
    return uid(f"group:{parent or ''}/{name}")


def groups() -> List[Dict[str, Any]]:
    out = []
    for name, parent in GROUP_TREE:
        parent_uuid = None
        if parent is not None:
            grand = next(p for n, p in GROUP_TREE if n == parent)
            parent_uuid = _group_uuid(parent, grand)
        group: Dict[str, Any] = {"uuid": _group_uuid(name, parent), "displayName": name, "isSecurityGroup": False}
        if parent_uuid:
            group["parentGroupUuid"] = parent_uuid
        out.append(group)
    return out


def group_uuid(path: str) -> str:
    """'All/Linux/Servers' -> that group's uuid."""
    parts = path.split("/")
    return _group_uuid(parts[-1], parts[-2] if len(parts) > 1 else None)


DEVICES = [("lnx-web-01", "All/Linux/Servers", "Debian GNU/Linux 12", "DEVICE_TYPE_SERVER", "10.0.1.11"),
           ("lnx-db-01", "All/Linux/Servers", "Ubuntu 24.04 LTS", "DEVICE_TYPE_SERVER", "10.0.1.12"),
           ("lnx-dev-07", "All/Linux/Workstations", "Fedora Linux 40", "DEVICE_TYPE_DESKTOP", "10.0.2.7"),
           ("win-lap-03", "All/Windows/Laptops", "Microsoft Windows 11 Pro", "DEVICE_TYPE_NOTEBOOK", "10.0.3.3"),
           ("win-srv-01", "All/Windows/Servers", "Microsoft Windows Server 2022", "DEVICE_TYPE_SERVER", "10.0.4.1")]


def devices() -> List[Dict[str, Any]]:
    return [{"uuid": uid("device:" + name), "displayName": name, "parentGroupUuid": group_uuid(group),
             "operatingSystem": {"displayName": os_name}, "deviceType": kind, "primaryLocalIpAddress": ip,
             "functionalityStatus": "DEVICE_FUNCTIONALITY_STATUS_OK", "isMuted": False}
            for name, group, os_name, kind, ip in DEVICES]


def configuration() -> Dict[str, Any]:
    # The value shapes are unknown (batchGetValues was seen only in public client code); plausible ones.
    return {"server": {"updates": {"trigger": {"enabled": True, "intervalMinutes": 60}},
                       "apiPort": 9443, "restApiEnabled": True}}


def initial_state(deployment: str) -> Dict[str, Any]:
    state: Dict[str, Any] = {"policies": builtin_policies(), "assignments": [], "groups": groups(),
                             "devices": devices(), "subscriptions": [], "configuration": configuration()}
    if deployment == "cloud":
        # Cloud targets may be subscriptions; On-Prem has none.
        state["subscriptions"] = [{"uuid": uid("subscription:default"), "displayName": "ESET PROTECT Advanced"}]
    return state


# ce_flags the collection's settings map guesses for "Apply" and "Force" (DEFAULT_MAP flags); 0 is "Not apply".
APPLY, FORCE, NOT_APPLY = 4, 4 | 1, 0


def agent_proxy_nodes(host: str, port: int = 3128, use: bool = True, flags: int = APPLY,
                      node_flags: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """The agent proxy settings at the node paths of the collection's DEFAULT_MAP (a guess, ESET-FACTS §2), global
    mode; ``node_flags`` gives single leaves (``Host``, ``Port``, ``UseProxy``, ``ProxyConfigurationType``) other
    ce_flags, for forced and not-apply cases."""
    bits = dict(node_flags or {})

    def node(name: str, ce_type: int, value: Any) -> Dict[str, Any]:
        return {"ce_flags": bits.get(name, flags), "ce_type": ce_type, "ce_value": value}

    return {"settings": {"ce_flags": 0, "HttpProxy": {
        "ce_flags": 0, "ProxyConfigurationType": node("ProxyConfigurationType", 2, 0),
        "Global": {"ce_flags": 0, "UseProxy": node("UseProxy", 6, int(use)), "Host": node("Host", 1, host),
                   "Port": node("Port", 3, port)}}}}


def agent_proxy_policy(name: str, host: str, port: int = 3128, data_format: int = 1, **nodes: Any) -> Dict[str, Any]:
    """A seedable (not built-in) agent policy that sets the proxy, in policy data format 1 or 2."""
    tree = agent_proxy_nodes(host, port, **nodes)
    data = format1(AGENT_SHORT, tree) if data_format == 1 else format2(AGENT_SHORT, "13.0", {}, data=tree)
    return {"uuid": uid("policy:" + name), "displayName": name, "description": "agent proxy test policy",
            "features": [_feature(AGENT_PRODUCT, data)]}
