# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""(devices, groups, options) -> hosts, host variables, groups and the ``eset_inventory`` summary. Pure: the same
lists give the same inventory whatever order the server listed them in."""
from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._resources import GroupIndex

from ._clones import clone_sets
from ._device import address_problem, field_value, group_part, host_name, host_variables, os_family, unique_names
from ._options import InventoryOptions

# The plugin's evaluator of {expression: ...} entries: (expression, host variables) -> value.
Evaluate = t.Callable[[str, t.Mapping[str, t.Any]], t.Any]
Device = t.Mapping[str, t.Any]
WARNING_ITEMS = 10


@dataclass
class Inventory:
    hosts: t.Dict[str, t.Dict[str, t.Any]] = field(default_factory=dict)
    groups: t.Dict[str, t.Optional[str]] = field(default_factory=dict)  # group -> its parent group (None: top)
    members: t.Dict[str, t.List[str]] = field(default_factory=dict)  # group -> its hosts
    summary: t.Dict[str, t.Any] = field(default_factory=dict)
    warnings: t.List[str] = field(default_factory=list)


def _listing(texts: t.Sequence[str], where: str) -> str:
    shown = "; ".join(texts[:WARNING_ITEMS])
    more = len(texts) - WARNING_ITEMS
    return shown + (f"; and {more} more (see eset_inventory.{where})" if more > 0 else "")


GroupFilter = t.Tuple[t.Optional[t.Set[str]], t.List[str], t.List[str]]


def _group_filter(index: GroupIndex, paths: t.Sequence[str]) -> GroupFilter:
    """The group uuids the filter selects (None: every group), the paths that name no group, and why."""
    if not paths:
        return None, [], []
    allowed: t.Set[str] = set()
    missing: t.List[str] = []
    messages: t.List[str] = []
    for path in paths:
        try:
            uuid, _path = index.resolve(path)
        except ValueError as exc:
            missing.append(path)
            messages.append(str(exc))
            continue
        allowed |= index.subtree(uuid)
    return allowed, missing, messages


def _select(devices: t.Sequence[Device], allowed: t.Optional[t.Set[str]], options: InventoryOptions,
            left_out: t.List[t.Dict[str, str]]) -> t.List[Device]:
    """The devices the filters keep, each uuid once; a device without a uuid is left out."""
    seen: t.Set[str] = set()
    out = []
    for device in devices:
        uuid = str(device.get("uuid") or "")
        if not uuid:
            left_out.append({"uuid": "", "display_name": str(device.get("displayName") or ""),
                             "reason": "the server listed it without a uuid"})
            continue
        if uuid in seen:
            continue
        seen.add(uuid)
        if allowed is not None and str(device.get("parentGroupUuid") or "") not in allowed:
            continue
        if options.os_families and os_family(device) not in options.os_families:
            continue
        out.append(device)
    return sorted(out, key=lambda d: str(d["uuid"]))


def _without_clones(devices: t.List[Device], options: InventoryOptions, left_out: t.List[t.Dict[str, str]]
                    ) -> t.Tuple[t.List[Device], t.List[t.Dict[str, t.Any]]]:
    """The devices to list (with clones=newest, one per machine: the most recently synced) and the clone report."""
    report = []
    dropped: t.Set[int] = set()
    for machine, indexes in clone_sets(devices):
        kept, others = devices[indexes[0]], [devices[i] for i in indexes[1:]]
        report.append({"machine": machine, "kept": str(kept["uuid"]), "others": [str(d["uuid"]) for d in others]})
        if options.clones == "all":
            continue
        dropped.update(indexes[1:])
        for other in others:
            left_out.append({"uuid": str(other["uuid"]), "display_name": str(other.get("displayName") or ""),
                             "reason": f"a clone of {kept['uuid']} ({machine}), which synced more recently"})
    return [d for i, d in enumerate(devices) if i not in dropped], report


def ansible_host(device: Device, variables: t.Mapping[str, t.Any], options: InventoryOptions,
                 evaluate: t.Optional[Evaluate]) -> t.Tuple[t.Optional[str], t.List[str]]:
    """The first usable value of ansible_host_sources, or None and why each entry was not usable."""
    reasons = []
    for source in options.host_sources:
        if source.field:
            value = field_value(device, source.field)
        else:
            # As given, not str()-copied: Ansible's templating trusts the config file's own (tagged) strings only.
            value = evaluate(t.cast(str, source.expression), variables) if evaluate else None
        usable, why = address_problem(value, options.exclude)
        if usable:
            return usable, []
        reasons.append(f"{source.label()} {why}")
    return None, reasons


def _place_hosts(inventory: Inventory, devices: t.Sequence[Device], index: GroupIndex, options: InventoryOptions,
                 evaluate: t.Optional[Evaluate], left_out: t.List[t.Dict[str, str]]) -> t.List[t.Dict[str, str]]:
    """Hosts with their variables; the renamed ones are returned."""
    placed: t.Dict[str, t.Dict[str, t.Any]] = {}
    for device in devices:
        variables = host_variables(device, index)
        address, reasons = ansible_host(device, variables, options, evaluate)
        if address is None:
            left_out.append({"uuid": variables["eset_uuid"], "display_name": variables["eset_display_name"],
                             "reason": "no usable address: " + "; ".join(reasons)})
            continue
        placed[variables["eset_uuid"]] = {"ansible_host": address, **variables}
    names = unique_names({uuid: host_name(v["eset_display_name"], uuid) for uuid, v in placed.items()})
    renamed = []
    for uuid in sorted(placed, key=lambda u: names[u]):
        variables = placed[uuid]
        inventory.hosts[names[uuid]] = variables
        if names[uuid] != variables["eset_display_name"]:
            renamed.append({"uuid": uuid, "display_name": variables["eset_display_name"], "host": names[uuid]})
    return renamed


def _place_groups(inventory: Inventory, index: GroupIndex, allowed: t.Optional[t.Set[str]], prefix: str) -> None:
    """The static group tree (with a filter: the selected subtrees and the groups above them) and the OS groups."""
    shown = set(index.by_uuid) if allowed is None else set(allowed)
    for uuid in list(shown):
        parent = index.parent(uuid)
        while parent and parent not in shown:
            shown.add(parent)
            parent = index.parent(parent)
    names = unique_names({uuid: prefix + "_".join(group_part(p) for p in index.names[uuid]) for uuid in shown})
    for uuid in sorted(shown, key=lambda u: names[u]):
        parent = index.parent(uuid)
        inventory.groups[names[uuid]] = names[parent] if parent else None
        inventory.members[names[uuid]] = []
    for host, variables in inventory.hosts.items():
        group = names.get(variables["eset_group_uuid"])
        if group:
            inventory.members[group].append(host)
        os_group = f"{prefix}os_{variables['eset_os_family']}"
        inventory.groups.setdefault(os_group, None)
        inventory.members.setdefault(os_group, []).append(host)


def _warnings(summary: t.Mapping[str, t.Any], missing_messages: t.Sequence[str]) -> t.List[str]:
    out = [f"group_paths: {message}; the devices of the other paths are still listed" for message in missing_messages]
    if summary["clones"]:
        verb = "also listed" if summary["clones_listed"] else "left out"
        out.append("{} machine(s) listed more than once: {}".format(len(summary["clones"]), _listing([
            "{}: kept {}, {} {}".format(c["machine"], c["kept"], verb, ", ".join(c["others"]))
            for c in summary["clones"]], "clones")))
    if summary["renamed"]:
        out.append("{} device(s) renamed to be inventory host names: {}".format(len(summary["renamed"]), _listing(
            [f"{r['display_name']!r} -> {r['host']}" for r in summary["renamed"]], "renamed")))
    if summary["left_out"]:
        out.append("{} device(s) left out: {}".format(len(summary["left_out"]), _listing(
            [f"{d['display_name']!r} ({d['uuid']}): {d['reason']}" for d in summary["left_out"]], "left_out")))
    return out


def build(devices: t.Sequence[Device], groups: t.Sequence[t.Mapping[str, t.Any]], options: InventoryOptions,
          evaluate: t.Optional[Evaluate] = None, deployment: str = "") -> Inventory:
    """The inventory of ``devices`` in ``groups`` (the API's lists) under ``options``."""
    index = GroupIndex(groups)
    inventory = Inventory()
    left_out: t.List[t.Dict[str, str]] = []
    allowed, missing, missing_messages = _group_filter(index, options.group_paths)
    kept, clones = _without_clones(_select(devices, allowed, options, left_out), options, left_out)
    renamed = _place_hosts(inventory, kept, index, options, evaluate, left_out)
    _place_groups(inventory, index, allowed, options.group_prefix)
    inventory.summary = {"deployment": deployment, "devices_listed": len(devices), "hosts": len(inventory.hosts),
                         "requests": None, "pages": None, "from_cache": False, "left_out": left_out,
                         "renamed": renamed, "clones": clones, "missing_group_paths": missing}
    inventory.warnings = _warnings({**inventory.summary, "clones_listed": options.clones == "all"}, missing_messages)
    return inventory
