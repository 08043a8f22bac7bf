# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The agent_policy section of the overrides file, learnt from the sentinel policy (see _sentinel)."""
from __future__ import annotations

import typing as t

from .._eset_api._resources import PolicyApi
from .._eset_policy import _codec as codec
from .._eset_policy._settings_map import DEFAULT_MAP, MapError, build_map
from ._sentinel import (
    CONFIRMED,
    FALLBACK_RE,
    MODE_RE,
    NOT_FOUND,
    USE_RE,
    Leaf,
    beside,
    find_policy,
    item,
    leaves,
    locate_service,
    node_of,
    policy_data,
)

MODES = ("global", "per_service")
# What agent_proxy_policy writes for services "all": when every one is learnt, the map is confirmed for it.
REQUIRED = ("product", "section", "proxy_mode", "proxy_mode.values.global", "fallback_direct",
            "services.global.use", "services.global.host", "services.global.port")


def _services(all_leaves: t.Sequence[Leaf], sentinels: t.Mapping[str, t.Tuple[str, int]],
              items: t.List[t.Dict[str, t.Any]]) -> t.Tuple[t.Dict[str, t.Any], t.List[Leaf]]:
    """The learnt service entries, and the host leaf of each (the first is where the others stand beside)."""
    services: t.Dict[str, t.Any] = {}
    anchors: t.List[Leaf] = []
    for service, (host, port) in sentinels.items():
        pair, found = locate_service(all_leaves, service, host, port)
        items += found
        if pair is None:
            items.append(item(f"services.{service}.use", NOT_FOUND, None, "its host and port were not found"))
            continue
        host_leaf, port_leaf = pair
        use, use_item = beside(all_leaves, f"services.{service}.use", host_leaf[0], [host_leaf[1][:-1]], USE_RE,
                               [host_leaf[1], port_leaf[1]])
        items.append(use_item)
        services[service] = {"host": node_of(host_leaf), "port": node_of(port_leaf)}
        if use is not None:
            services[service]["use"] = node_of(use)
        anchors.append(host_leaf)
    return services, anchors


def _mode_values(mode: str, current: t.Any, items: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    """The stored value of the mode the administrator chose is learnt; the other keeps the built-in guess."""
    defaults = dict(DEFAULT_MAP["proxy_mode"]["values"])
    other = MODES[1 - MODES.index(mode)]
    try:
        learnt: t.Any = int(current)
    except (TypeError, ValueError):
        learnt = current
    values = {mode: learnt, other: defaults[other] if defaults[other] != learnt else defaults[mode]}
    items.append(item(f"proxy_mode.values.{mode}", CONFIRMED, learnt, f"the sentinel policy uses the {mode} mode"))
    items.append(item(f"proxy_mode.values.{other}", NOT_FOUND, values[other],
                      f"kept the built-in guess; calibrate once more with the {other} mode to learn it"))
    return values


def _beside_anchor(all_leaves: t.Sequence[Leaf], anchor: Leaf, services: t.Mapping[str, t.Any], mode: str,
                   items: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    section, container = anchor[0], anchor[1][:-1]
    exclude = [tuple(node["path"].split("/")) for entry in services.values() for node in entry.values()]
    places = [container[:-1], container] if container else [container]
    out: t.Dict[str, t.Any] = {}
    mode_leaf, mode_item = beside(all_leaves, "proxy_mode", section, places, MODE_RE, exclude)
    items.append(mode_item)
    if mode_leaf is not None:
        out["proxy_mode"] = dict(node_of(mode_leaf), values=_mode_values(mode, mode_item["current"], items))
    fallback, fallback_item = beside(all_leaves, "fallback_direct", section, places, FALLBACK_RE, exclude)
    items.append(fallback_item)
    if fallback is not None:
        out["fallback_direct"] = node_of(fallback)
    return out


def learn(api: PolicyApi, ref: str, sentinels: t.Mapping[str, t.Tuple[str, int]], mode: str) -> t.Dict[str, t.Any]:
    """{policy, items, agent_policy (the overrides section), secrets (values to redact)}."""
    policy = find_policy(api, ref)
    product, data = policy_data(policy)
    all_leaves = leaves(data)
    items = [item("product", CONFIRMED if product else NOT_FOUND, product or None,
                  "features[].configuration.product of the policy")]
    services, anchors = _services(all_leaves, sentinels, items)
    section: t.Dict[str, t.Any] = {"product": product} if product else {}
    if anchors:
        section["section"] = anchors[0][0]
        items.append(item("section", CONFIRMED, anchors[0][0], "the data section that holds the sentinels"))
        section.update(_beside_anchor(all_leaves, anchors[0], services, mode, items))
        section["services"] = services
    else:
        items += [item(name, NOT_FOUND, None, "no sentinel was found, so nothing stands beside it")
                  for name in ("section", "proxy_mode", "fallback_direct")]
    status = {entry["item"]: entry["status"] for entry in items}
    section["confirmed"] = all(status.get(name) == CONFIRMED for name in REQUIRED)
    out: t.Dict[str, t.Any] = {"policy": describe(policy, product, data), "items": items,
                               "agent_policy": section, "secrets": codec.secret_values(data), "map_error": None}
    try:
        build_map(section)
    except MapError as exc:
        section["confirmed"] = False
        out["map_error"] = str(exc)
    return out


def describe(policy: t.Mapping[str, t.Any], product: str, data: codec.PolicyData) -> t.Dict[str, t.Any]:
    """The policy as the transcript shows it: secrets masked."""
    return dict(data.summary(), uuid=policy.get("uuid"), name=policy.get("displayName"), product=product,
                settings_flat=codec.flatten(codec.masked_sections(data)))
