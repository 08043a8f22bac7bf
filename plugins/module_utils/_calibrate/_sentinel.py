# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The agent policy an administrator configured once with sentinel values: which nodes hold them.

The sentinels (a proxy host such as ``calibrate-proxy.invalid`` and an unusual port such as 39031) are typed into
the console's HTTP proxy settings, so the leaves whose values are the sentinels are the host and port nodes. The
nodes beside them are told by their place and name: a boolean-like sibling named "use"/"enable" is the "use proxy"
switch; in the container above, a node named "type"/"mode" is the proxy configuration type and one named
"direct"/"fallback" the fall-back to a direct connection. What cannot be told that way is reported "not found".
"""
from __future__ import annotations

import re
import typing as t

from .._eset_api._resources import PolicyApi, is_uuid, legacy_feature
from .._eset_policy import _codec as codec

CONFIRMED = "confirmed"
NOT_FOUND = "not found"
AMBIGUOUS = "ambiguous"
GLOBAL = "global"
# "UseDirectConnection..." is the fall-back switch, not the "use proxy" one.
USE_RE = re.compile(r"^(?!.*(direct|fallback)).*(use|enable)", re.I)
MODE_RE = re.compile(r"type|mode", re.I)
FALLBACK_RE = re.compile(r"direct|fallback", re.I)

Leaf = t.Tuple[str, t.Tuple[str, ...], t.Dict[str, t.Any]]  # (section, node path parts, node)


class CalibrationError(ValueError):
    """The calibration cannot go on; the message names the value and what would be accepted."""


def item(name: str, status: str, value: t.Any = None, note: str = "", **extra: t.Any) -> t.Dict[str, t.Any]:
    return dict({"item": name, "status": status, "value": value, "note": note}, **extra)


def find_policy(api: PolicyApi, ref: str) -> t.Dict[str, t.Any]:
    """The policy by uuid or by its exact display name (one only)."""
    if is_uuid(ref):
        policy = api.get_policy(ref)
        if policy is None:
            raise CalibrationError(f"policy {ref}: the server has no policy with this uuid")
        return api.full(policy)
    policies = api.list_policies()
    found = [p for p in policies if p.get("displayName") == ref]
    if not found:
        names = sorted({str(p.get("displayName")) for p in policies if not p.get("builtIn")})
        raise CalibrationError("policy {!r}: no policy has this name; give the name or uuid of the agent policy "
                               "you set the sentinel values in (policies that are not built in: {})".format(
                                   ref, ", ".join(names[:20]) or "none"))
    if len(found) > 1:
        raise CalibrationError("policy {!r}: {} policies have this name; give one of their uuids: {}".format(
            ref, len(found), ", ".join(str(p.get("uuid")) for p in found)))
    return api.full(found[0])


def policy_data(policy: t.Mapping[str, t.Any]) -> t.Tuple[str, codec.PolicyData]:
    """(configuration.product, decoded data) of the policy's ESET PROTECT feature."""
    feature = legacy_feature(policy)
    if feature is None:
        raise CalibrationError("policy {!r} has no ESET PROTECT policy data (featureId 4294967295): pick an ESET "
                               "Management Agent policy".format(policy.get("displayName")))
    conf = feature.get("configuration") or {}
    try:
        data = codec.decode(conf.get("data") or "")
    except codec.PolicyDataError as exc:
        raise CalibrationError(f"policy {policy.get('displayName')!r}: its data cannot be decoded: {exc}") from None
    return str(conf.get("product") or ""), data


def leaves(data: codec.PolicyData) -> t.List[Leaf]:
    """Every setting leaf of every section, in document order."""
    found: t.List[Leaf] = []

    def walk(section: str, node: t.Dict[str, t.Any], parts: t.Tuple[str, ...]) -> None:
        if "ce_value" in node and parts:
            found.append((section, parts, node))
        for key, child in node.items():
            if isinstance(child, dict) and not key.startswith("ce_"):
                walk(section, child, (*parts, key))

    for section, tree in data.sections().items():
        walk(section, tree, ())
    return found


def ce_type(node: t.Mapping[str, t.Any]) -> t.Optional[int]:
    try:
        return int(node["ce_type"])
    except (KeyError, TypeError, ValueError):
        return None


def node_of(leaf: Leaf) -> t.Dict[str, t.Any]:
    return {"path": "/".join(leaf[1]), "ce_type": ce_type(leaf[2])}


def _matches(all_leaves: t.Sequence[Leaf], value: str) -> t.List[Leaf]:
    return [leaf for leaf in all_leaves if str(codec.leaf_value(leaf[2])).lower() == value.lower()]


def _part_item(service: str, part: str, hits: t.Sequence[Leaf], value: str, note: str) -> t.Dict[str, t.Any]:
    name = f"services.{service}.{part}"
    if len(hits) == 1:
        return item(name, CONFIRMED, dict(node_of(hits[0]), section=hits[0][0]), note)
    if hits:
        paths = ["{}/{}".format(s, "/".join(p)) for s, p, _n in hits]
        return item(name, AMBIGUOUS, None, f"the sentinel {value!r} is in {len(hits)} nodes: {', '.join(paths)}")
    return item(name, NOT_FOUND, None, f"no setting of the policy holds {value!r}: was it typed into this policy "
                "and saved?")


def locate_service(all_leaves: t.Sequence[Leaf], service: str, host: str,
                   port: int) -> t.Tuple[t.Optional[t.Tuple[Leaf, Leaf]], t.List[t.Dict[str, t.Any]]]:
    """The (host leaf, port leaf) of one service's sentinels, when each is in exactly one node, and an item each."""
    hosts, ports = _matches(all_leaves, host), _matches(all_leaves, str(port))
    pairs = [(h, p) for h in hosts for p in ports if h[0] == p[0] and h[1][:-1] == p[1][:-1]]
    if len(pairs) == 1:
        hosts, ports = [pairs[0][0]], [pairs[0][1]]
    note = "" if pairs or not (hosts and ports) else "host and port are not in the same container"
    found = [_part_item(service, "host", hosts, host, note), _part_item(service, "port", ports, str(port), note)]
    return ((hosts[0], ports[0]) if len(hosts) == 1 and len(ports) == 1 else None), found


def _one_beside(all_leaves: t.Sequence[Leaf], section: str, container: t.Tuple[str, ...], pattern: t.Pattern[str],
                exclude: t.Sequence[t.Tuple[str, ...]]) -> t.List[Leaf]:
    return [leaf for leaf in all_leaves if leaf[0] == section and leaf[1][:-1] == container
            and leaf[1] not in exclude and pattern.search(leaf[1][-1])]


def beside(all_leaves: t.Sequence[Leaf], name: str, section: str, containers: t.Sequence[t.Tuple[str, ...]],
           pattern: t.Pattern[str], exclude: t.Sequence[t.Tuple[str, ...]],
           ) -> t.Tuple[t.Optional[Leaf], t.Dict[str, t.Any]]:
    """The one leaf whose name matches ``pattern`` in the first of ``containers`` that has any."""
    for container in containers:
        hits = _one_beside(all_leaves, section, container, pattern, exclude)
        where = "/".join((section, *container))
        if len(hits) == 1:
            return hits[0], item(name, CONFIRMED, node_of(hits[0]), f"told by its name and place in {where}",
                                 current=codec.leaf_value(hits[0][2]))
        if hits:
            return None, item(name, AMBIGUOUS, None, "{} nodes in {} could be it: {}".format(
                len(hits), where, ", ".join(h[1][-1] for h in hits)))
    return None, item(name, NOT_FOUND, None, f"no node beside the sentinels is named like it ({pattern.pattern})")
