# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The HTTP proxy an agent gets from its policies: ESET's order of application and merge rules, pure.

Order (help.eset.com, ESET PROTECT "Ordering Groups" and "Enumerating Policies"): static groups from ``All``
down to the device's own group; on every level the static group first, then the dynamic groups of that level
(a dynamic group's own dynamic children right after it, depth first, in list order); the device last. On one
target the policies apply in assignment rank order (rank 1 first, as the policy-management spec says: "applied
in order from the highest rank to the lowest").

Merge ("Flags"): a later policy overwrites an earlier one's setting, unless the earlier one is *forced* (the
first forced value wins, even over a later forced one); a setting marked *not apply* is skipped. Which
``ce_flags`` bits mean apply and force is a guess kept in the settings map (``flags``).
"""
from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from .._eset_api._resources import GroupIndex, legacy_feature, target_key
from . import _codec as codec
from ._settings_map import GLOBAL

UNKNOWN_REASON = "unknown (maybe set by the installer)"
# The per-service entry whose proxy carries the push notification connection (an assumption: EPNS is one of the
# "ESET services", next to updates and telemetry).
EPNS_SERVICE = "eset_services"
_TRUE = ("1", "true", "yes")


@dataclass
class AppliedPolicy:
    """One agent policy on one target, in the order it is applied."""

    uuid: str
    name: str
    target: str  # how docs and results name the target: "group All/Linux", "device lnx-01"
    values: t.Dict[str, t.Tuple[str, bool]] = field(default_factory=dict)  # label -> (value, forced)


def leaf_flags(node: t.Any, flags: t.Mapping[str, int]) -> t.Tuple[bool, bool]:
    """``(applied, forced)`` of a leaf by its ``ce_flags``; a leaf without a readable value is not applied."""
    if not isinstance(node, dict) or "ce_value" not in node:
        return False, False
    try:
        bits = int(str(node.get("ce_flags", 0)))
    except ValueError:
        return False, False
    forced = bool(bits & flags["force"])
    return forced or bool(bits & flags["apply"]), forced


def _node_at(tree: t.Mapping[str, t.Any], path: str) -> t.Any:
    node: t.Any = tree
    for part in codec.split_path(path):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def mapped_settings(data: codec.PolicyData, mapping: t.Mapping[str, t.Any]) -> t.Dict[str, t.Tuple[str, bool]]:
    """``{label: (normalised value, forced)}`` for every mapped node the policy applies (not-apply ones left out)."""
    section = data.sections().get(mapping["section"])
    if not isinstance(section, dict):
        return {}
    out: t.Dict[str, t.Tuple[str, bool]] = {}
    nodes = [("proxy_mode", mapping["proxy_mode"]), ("fallback_direct", mapping["fallback_direct"])]
    nodes += [(f"services.{name}.{part}", entry[part]) for name, entry in mapping["services"].items()
              for part in ("use", "host", "port")]
    for label, node in nodes:
        leaf = _node_at(section, node["path"])
        applied, forced = leaf_flags(leaf, mapping["flags"])
        if applied:
            out[label] = (str(codec.normalize(leaf["ce_value"])), forced)
    return out


def merge(policies: t.Sequence[AppliedPolicy]) -> t.Tuple[t.Dict[str, str], t.List[AppliedPolicy]]:
    """The merged ``{label: value}`` and the policies that set at least one of them, in application order."""
    values: t.Dict[str, str] = {}
    forced: t.Set[str] = set()
    contributed: t.List[AppliedPolicy] = []
    for policy in policies:
        took = False
        for label, (value, is_forced) in policy.values.items():
            if label in forced:
                continue
            values[label] = value
            took = True
            if is_forced:
                forced.add(label)
        if took:
            contributed.append(policy)
    return values, contributed


def target_order(static_path: t.Sequence[str], dynamic: t.Sequence[t.Tuple[str, t.Optional[str]]],
                 device: str) -> t.List[str]:
    """The targets in the order their policies apply.

    ``static_path``: the device's static groups from ``All`` down to its own; ``dynamic``: ``(uuid, parent uuid)``
    of the dynamic groups the device is a member of, in the order the group list has them. A dynamic group
    belongs to the level below its nearest static ancestor on the path; one whose parent is neither on the path
    nor a dynamic member group goes after the device's own group.
    """
    member = {uuid for uuid, _parent in dynamic}
    children: t.Dict[t.Optional[str], t.List[str]] = {}
    for uuid, parent in dynamic:
        anchor = parent if parent in member or parent in static_path else None
        children.setdefault(anchor, []).append(uuid)

    def depth_first(parent: t.Optional[str]) -> t.List[str]:
        out: t.List[str] = []
        for uuid in children.get(parent, []):
            out += [uuid, *depth_first(uuid)]
        return out

    order: t.List[str] = []
    for level, group in enumerate(static_path):
        order.append(group)
        if level > 0:
            order += depth_first(static_path[level - 1])
    if static_path:
        order += depth_first(static_path[-1])
    order += depth_first(None)
    return [*order, device]


def _rank(value: t.Any) -> int:
    """An assignment's rank; protobuf JSON may send int64 as a string. Unknown ranks go last."""
    try:
        return int(str(value))
    except ValueError:
        return 1 << 30


def _as_bool(value: t.Optional[str]) -> t.Optional[bool]:
    return None if value is None else value.strip().lower() in _TRUE


def _as_port(value: t.Optional[str]) -> t.Optional[int]:
    try:
        port = int(str(value))
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def _service_proxy(values: t.Mapping[str, str], name: str) -> t.Tuple[t.Optional[bool], t.Optional[str],
                                                                      t.Optional[int]]:
    host = (values.get(f"services.{name}.host") or "").strip() or None
    return _as_bool(values.get(f"services.{name}.use")), host, _as_port(values.get(f"services.{name}.port"))


def _per_service(values: t.Mapping[str, str], mapping: t.Mapping[str, t.Any]) -> t.Tuple[
        t.Optional[bool], t.Optional[str], t.Optional[int], t.List[str]]:
    """The EPNS service's proxy in "different proxy per service" mode, and every service that uses the same one."""
    names = [n for n in mapping["services"] if n != GLOBAL]
    carrier = EPNS_SERVICE if EPNS_SERVICE in names else (names[0] if names else GLOBAL)
    use, host, port = _service_proxy(values, carrier)
    same = [n for n in names if _service_proxy(values, n) == (True, host, port)] if use else []
    return use, host, port, same


def effective_proxy(policies: t.Sequence[AppliedPolicy], mapping: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """``eset_agent_proxy`` of one device from its agent policies in application order."""
    values, contributed = merge(policies)
    mode = values.get("proxy_mode")
    per_service = mode is not None and mode == str(codec.normalize(mapping["proxy_mode"]["values"]["per_service"]))
    if per_service:
        use, host, port, services = _per_service(values, mapping)
    else:
        use, host, port = _service_proxy(values, GLOBAL)
        services = ["all"] if use else []
    result: t.Dict[str, t.Any] = {
        "host": None, "port": None, "services": [], "fallback_direct": _as_bool(values.get("fallback_direct")),
        "from_policies": [{"uuid": p.uuid, "name": p.name, "target": p.target} for p in contributed],
        "map_confirmed": bool(mapping.get("confirmed")), "reason": None}
    if use is False:
        result["reason"] = "direct: the policies turn the proxy off{}".format(
            " for ESET services" if per_service else "")
    elif host is None:
        result["reason"] = UNKNOWN_REASON
    else:
        result.update(host=host, port=port or 3128, services=services)
    return result


def agent_policy_uuids(policies: t.Sequence[t.Mapping[str, t.Any]], mapping: t.Mapping[str, t.Any]) -> t.List[str]:
    """The policies of the agent product (``configuration.product`` of their legacy feature)."""
    out = []
    for policy in policies:
        feature = legacy_feature(policy)
        if feature and (feature.get("configuration") or {}).get("product") == mapping["product"] and policy.get("uuid"):
            out.append(str(policy["uuid"]))
    return out


def static_path(index: GroupIndex, group: t.Optional[str]) -> t.List[str]:
    """The static groups from the root down to ``group`` (a parent loop ends the walk)."""
    path: t.List[str] = []
    current = group if group in index.by_uuid else None
    while current and current not in path:
        path.append(current)
        current = index.parent(current)
    return list(reversed(path))


def dynamic_candidates(assignments: t.Sequence[t.Mapping[str, t.Any]], index: GroupIndex,
                       devices: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[str]:
    """Targeted groups that are no device's static group nor above one: only their members say who is in them.

    The group list does not say which groups are dynamic; a group on a device's static path is static for that
    device whatever it is, so only the others need a member list (one request each, more for large groups).
    """
    on_paths: t.Set[str] = set()
    for group in {str(d.get("parentGroupUuid") or "") for d in devices}:
        on_paths.update(static_path(index, group))
    targeted = []
    for assignment in assignments:
        kind, uuid = target_key(assignment.get("target") or {})
        if kind == "deviceGroupUuid" and uuid not in on_paths and uuid not in targeted:
            targeted.append(uuid)
    return targeted


class AgentPolicies:
    """The agent policies of a server, their assignments and the dynamic groups' members: one device's proxy."""

    def __init__(self, policies: t.Sequence[t.Mapping[str, t.Any]], assignments: t.Sequence[t.Mapping[str, t.Any]],
                 groups: t.Sequence[t.Mapping[str, t.Any]], members: t.Mapping[str, t.Collection[str]],
                 mapping: t.Mapping[str, t.Any], warn: t.Callable[[str], None]) -> None:
        self.mapping = mapping
        self.index = GroupIndex(groups)
        self.members = {group: set(uuids) for group, uuids in members.items()}
        self.settings: t.Dict[str, AppliedPolicy] = {}
        wanted = set(agent_policy_uuids(policies, mapping))
        for policy in policies:
            if str(policy.get("uuid")) in wanted:
                self._decode(policy, warn)
        ranked: t.Dict[t.Tuple[str, str], t.List[t.Tuple[int, str]]] = {}
        for assignment in assignments:
            if assignment.get("policyUuid") in self.settings:
                ranked.setdefault(target_key(assignment.get("target") or {}), []).append(
                    (_rank(assignment.get("rank")), str(assignment["policyUuid"])))
        self.by_target = {key: [uuid for _rank, uuid in sorted(items)] for key, items in ranked.items()}

    def _decode(self, policy: t.Mapping[str, t.Any], warn: t.Callable[[str], None]) -> None:
        feature = legacy_feature(policy) or {}
        name = str(policy.get("displayName") or policy["uuid"])
        try:
            data = codec.decode(str((feature.get("configuration") or {}).get("data") or ""))
            values = mapped_settings(data, self.mapping)
        except (codec.PolicyDataError, ValueError) as exc:
            warn(f"agent policy {name!r} ({policy['uuid']}) cannot be decoded, so it is left out of "
                 f"eset_agent_proxy: {exc}")
            return
        self.settings[str(policy["uuid"])] = AppliedPolicy(str(policy["uuid"]), name, "", values)

    def applied(self, device: t.Mapping[str, t.Any]) -> t.List[AppliedPolicy]:
        """The device's agent policies in the order ESET applies them."""
        device_uuid = str(device.get("uuid"))
        path = static_path(self.index, device.get("parentGroupUuid"))
        dynamic = [(group, self.index.parent(group)) for group in self.index.by_uuid
                   if group not in path and device_uuid in self.members.get(group, ())]
        out: t.List[AppliedPolicy] = []
        for target in target_order(path, dynamic, device_uuid):
            key = ("deviceUuid", target) if target == device_uuid else ("deviceGroupUuid", target)
            label = "device {}".format(device.get("displayName") or device_uuid) if target == device_uuid else \
                f"group {self.index.paths.get(target, target)}"
            for uuid in self.by_target.get(key, []):
                template = self.settings[uuid]
                out.append(AppliedPolicy(template.uuid, template.name, label, template.values))
        return out

    def proxy(self, device: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
        return effective_proxy(self.applied(device), self.mapping)
