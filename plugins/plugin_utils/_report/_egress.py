# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Egress groups: the probed hosts of a phase by the way out they share, so a blocked site is one line. The key is
# the public address (ESET's publicIpAddress), the local prefix of the source address the probe used, its gateway,
# the proxy in effect and the ESET group. Branch offices repeat private ranges, so a prefix alone never makes a
# group: without a public address and a gateway a host's egress is unknown. One pass, grouping by dict keys.
from __future__ import annotations

import typing as t

from ._fleet import NO_FACTS, HostFacts, local_prefix, probe_egress
from ._normalise import optional_text
from ._states import NOT_PROBED, ROW_STATES
from ._text import natural_key

EgressKey = t.Tuple[t.Optional[str], t.Optional[str], t.Optional[str], t.Optional[str], t.Optional[str]]
INFERRED = "inferred"


def proxy_in_effect(facts: HostFacts, raw: t.Any) -> t.Optional[str]:
    """The agent's proxy from the inventory; without one, the first proxy the probe went through."""
    if facts.proxy:
        return facts.proxy
    if isinstance(raw, t.Mapping):
        for path in raw.get("paths") or ():
            proxy = optional_text(path.get("proxy")) if isinstance(path, t.Mapping) else None
            if proxy:
                return proxy
    return None


def egress_key(facts: HostFacts, raw: t.Any) -> t.Optional[EgressKey]:
    """(public address, local prefix, gateway, proxy, ESET group); None when the way out is unknown."""
    source, gateway = probe_egress(raw)
    if not facts.public_ip and not gateway:
        return None
    prefix = local_prefix(source) or local_prefix(facts.local_ip)
    return facts.public_ip, prefix, gateway, proxy_in_effect(facts, raw), facts.group


def _label(key: EgressKey) -> str:
    public_ip, prefix, gateway, proxy, group = key
    parts = [f"public {public_ip}" if public_ip else "public address unknown"]
    if prefix:
        parts.append(f"from {prefix}")
    if gateway:
        parts.append(f"via gateway {gateway}")
    parts.append(f"proxy {proxy}" if proxy else "direct")
    if group:
        parts.append(f"ESET group {group}")
    return ", ".join(parts)


def _new_group(key: EgressKey) -> t.Dict[str, t.Any]:
    public_ip, prefix, gateway, proxy, group = key
    return {
        "id": "",
        "label": _label(key),
        "public_ip": public_ip,
        "source": prefix,
        "gateway": gateway,
        "proxy": proxy,
        "eset_group": group,
        "hosts": 0,
        "states": {**{state: 0 for state in ROW_STATES}, INFERRED: 0},
        "cause_ids": [],
        "host_names": [],
        "inferred_names": [],
    }


def egress_groups(
    rows: t.Sequence[t.Mapping[str, t.Any]],
    results: t.Mapping[str, t.Any],
    facts: t.Mapping[str, HostFacts],
    host_causes: t.Mapping[str, t.Sequence[str]],
) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.Dict[str, str]]:
    """The egress groups of the probed rows, most hosts first, and host -> group id."""
    groups: t.Dict[EgressKey, t.Dict[str, t.Any]] = {}
    causes: t.Dict[EgressKey, t.Dict[str, None]] = {}
    member: t.Dict[str, EgressKey] = {}
    for row in rows:
        if row["state"] == NOT_PROBED:
            continue  # placed with the probed neighbours it is inferred from, if any (see place_inferred)
        host = row["host"]
        key = egress_key(facts.get(host, NO_FACTS), results.get(host))
        if key is None:
            continue
        group = groups.get(key)
        if group is None:
            group = groups[key] = _new_group(key)
            causes[key] = {}
        member[host] = key
        group["host_names"].append(host)
        group["states"][row["state"]] += 1
        for cause in host_causes.get(host, ()):
            causes[key][cause] = None
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]["host_names"]), kv[1]["label"]))
    ids: t.Dict[EgressKey, str] = {}
    for number, (key, group) in enumerate(ordered, 1):
        group["id"] = ids[key] = f"egress-{number}"
        group["cause_ids"] = list(causes[key])
        group["hosts"] = len(group["host_names"])
    return [group for _key, group in ordered], {host: ids[key] for host, key in member.items()}


def place_inferred(groups: t.Sequence[t.Dict[str, t.Any]], inferred: t.Sequence[t.Mapping[str, t.Any]],
                   rows: t.Mapping[str, t.Any]) -> None:
    """Count the hosts inferred from a group's hosts in that group (never among its probed hosts); those that
    are rows of the phase (in the play, not probed) count as not probed there too."""
    by_id = {group["id"]: group for group in groups}
    for line in inferred:
        group = by_id.get(line["egress"] or "")
        if group is None:
            continue
        group["states"][INFERRED] += 1
        if line["host"] in rows:
            group["states"][NOT_PROBED] += 1
        group["inferred_names"].append(line["host"])
    for group in groups:
        group["inferred_names"].sort(key=natural_key)
