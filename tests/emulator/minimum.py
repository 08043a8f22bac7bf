"""The fewest API requests protectnet.epns.eset_protect can make against a state (GET /_emulator/state): the
formula of docs/inventory.md, one home for the unit tests and `make bench`."""
from __future__ import annotations

import math
from typing import Any, Mapping, Set

from .seed import AGENT_PRODUCT

ASSIGNMENT_CHUNK = 50  # agent policies per assignment query (the plugin's _agent_proxy.CHUNK)


def _pages(items: int, limit: int) -> int:
    return max(1, math.ceil(items / limit))


def agent_proxy_pages(state: Mapping[str, Any], limit: int) -> int:
    """What eset_agent_proxy adds: the policy list, the agent policies' assignments (per 50 policies, none without
    agent policies), the members of each targeted group that is on no device's static path."""
    agent = [p["uuid"] for p in state["policies"]
             if any(f.get("configuration", {}).get("product") == AGENT_PRODUCT for f in p.get("features", []))]
    mine = [a for a in state["assignments"] if a["policyUuid"] in agent]
    parents = {g["uuid"]: g.get("parentGroupUuid") for g in state["groups"]}
    on_paths: Set[str] = set()
    for device in state["devices"]:
        group = device.get("parentGroupUuid")
        while group and group not in on_paths:
            on_paths.add(group)
            group = parents.get(group)
    targeted = {a["target"].get("deviceGroupUuid") for a in mine} - on_paths - {None}
    members = {g["uuid"]: len(g.get("dynamicMembers", [])) for g in state["groups"]}
    chunks = [agent[i:i + ASSIGNMENT_CHUNK] for i in range(0, len(agent), ASSIGNMENT_CHUNK)]
    return (_pages(len(state["policies"]), limit)
            + sum(_pages(len([a for a in mine if a["policyUuid"] in chunk]), limit) for chunk in chunks)
            + sum(_pages(members.get(group, 0), limit) for group in targeted))


def inventory_requests(state: Mapping[str, Any], limit: int, agent_proxy: bool = True) -> int:
    """One login, the group and device lists in pages of ``limit``, and (by default) eset_agent_proxy's reads."""
    lists = math.ceil(len(state["groups"]) / limit) + math.ceil(len(state["devices"]) / limit)
    return 1 + lists + (agent_proxy_pages(state, limit) if agent_proxy else 0)
