# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The Wake-on-LAN verdict: destination x agent, arrived or not, and why. Pure."""
from __future__ import annotations

import ipaddress
import typing as t

TITLE = "Wake-on-LAN"

REASONS = {
    "arrived": "the magic packet arrived",
    "not_applicable": "a directed broadcast only reaches its own subnet, and this agent is not on it",
    "not_sent": "the server could not send it",
    "not_forwarded": ("sent, but it never arrived: the router in front of that subnet does not forward directed "
                      "broadcasts (Linux: net.ipv4.conf.<if>.bc_forwarding; Cisco: ip directed-broadcast), or a "
                      "firewall on the way dropped it"),
    "not_delivered": ("sent, but it never arrived: the agent is not on the server's segment and multicast is not "
                      "routed to it, the TTL is too low, or a firewall on the way or on the agent dropped it"),
    "no_listener": "the agent could not listen, so nothing can be said",
    "secureon_mismatch": "arrived, but with another SecureOn password: the NIC would ignore it",
}


def in_subnet(addresses: t.Sequence[str], subnet: str) -> bool:
    net = ipaddress.ip_network(subnet, strict=False)
    for text in addresses:
        try:
            if ipaddress.ip_interface(text).ip in net:
                return True
        except ValueError:
            continue
    return False


def listen_targets(destinations: t.Sequence[t.Mapping[str, t.Any]], groups: t.Sequence[str],
                   expect: t.Sequence[str], addresses: t.Sequence[str]) -> t.Tuple[t.List[str], t.List[str]]:
    """The groups a listener on this host joins and the destinations it waits for, given its ``addresses``.

    Every multicast destination is expected, its group joined unless it is interface-local (such a group never
    leaves the sending host); a directed broadcast only when this host is on its subnet (``cell`` reports the
    others as not_applicable).
    """
    joined, expected = list(groups), list(expect)
    for dest in destinations:
        if dest.get("kind") in ("ipv4_multicast", "ipv6_multicast"):
            if dest["address"] not in joined and dest.get("scope") != "interface":
                joined.append(dest["address"])
        elif dest.get("subnet") and not in_subnet(addresses, dest["subnet"]):
            continue
        if dest["address"] not in expected:
            expected.append(dest["address"])
    return joined, expected


def cell(dest: t.Mapping[str, t.Any], sent: t.Optional[t.Mapping[str, t.Any]],
         agent: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """One destination seen from one agent: {status, reason, detail, source, at, latency_ms, ttl}."""
    address = dest["address"]
    out: t.Dict[str, t.Any] = {"destination": address, "status": "", "reason": "", "detail": "", "source": None,
                               "at": None, "latency_ms": None, "ttl": None}
    arrivals = [a for a in agent.get("arrivals") or [] if a.get("destination") == address]
    if agent.get("failed") or agent.get("listening") is False:
        out.update(status="no_listener", detail=str(agent.get("msg") or agent.get("failed") or ""))
    elif arrivals:
        first = min(arrivals, key=lambda a: a.get("at_ms") or 0)
        status = "arrived" if first.get("secureon_ok", True) else "secureon_mismatch"
        latency = None
        if sent and sent.get("first_sent_ms") and first.get("at_ms"):
            latency = max(0, int(first["at_ms"]) - int(sent["first_sent_ms"]))
        ttl = first.get("ttl")
        out.update(status=status, source=first.get("source"), at=first.get("at"), latency_ms=latency, ttl=ttl,
                   detail=f"from {first.get('source')} at {first.get('at')}"
                          + (f" with TTL {ttl}" if ttl is not None else "")
                          + (f" ({latency} ms after sending)" if latency is not None else ""))
    elif dest.get("kind") == "directed_broadcast" and dest.get("subnet") and \
            not in_subnet(agent.get("addresses") or [], dest["subnet"]):
        out.update(status="not_applicable", detail=f"agent not on {dest['subnet']}")
    elif sent is None or not sent.get("ok"):
        failure = (sent or {}).get("failure") or {}
        out.update(status="not_sent", detail=str(failure.get("message") or "not sent"),
                   failure_class=failure.get("class"))
    elif dest.get("kind") == "directed_broadcast":
        out.update(status="not_forwarded", detail=f"sent {sent.get('sent')} time(s) to {address}, none arrived")
    else:
        out.update(status="not_delivered", detail=f"sent {sent.get('sent')} time(s) to {address}, none arrived")
    out["reason"] = REASONS.get(out["status"], "")
    return out


def matrix(destinations: t.Sequence[t.Mapping[str, t.Any]], sends: t.Sequence[t.Mapping[str, t.Any]],
           agents: t.Mapping[str, t.Mapping[str, t.Any]], port: int = 9) -> t.Dict[str, t.Any]:
    """{'cells': {dest: {agent: cell}}, 'section': {title, text, items, table}} for the fleet report."""
    by_address = {s["address"]: s for s in sends}
    names = sorted(agents)
    cells: t.Dict[str, t.Dict[str, t.Dict[str, t.Any]]] = {}
    rows: t.List[t.List[str]] = []
    counts: t.Dict[str, int] = {}
    for dest in destinations:
        address = dest["address"]
        cells[address] = {}
        label = address + (f" ({dest['subnet']})" if dest.get("subnet") else "")
        row = [label]
        for name in names:
            one = cell(dest, by_address.get(address), agents[name])
            cells[address][name] = one
            counts[one["status"]] = counts.get(one["status"], 0) + 1
            mark = {"arrived": "arrived", "not_applicable": "n/a"}.get(one["status"], "NOT arrived")
            row.append(f"{mark}: {one['detail']}" if one["detail"] else mark)
        rows.append(row)
    tried = sum(v for k, v in counts.items() if k != "not_applicable")
    text = (f"Magic packets to UDP port {port}, sent by the ESET PROTECT server host to each destination, "
            f"listened for on every agent: {counts.get('arrived', 0)} of {tried} expected deliveries arrived.")
    items = []
    for status in ("not_sent", "not_forwarded", "not_delivered", "no_listener", "secureon_mismatch"):
        if counts.get(status):
            items.append(f"{status} ({counts[status]}): {REASONS[status]}")
    section = {"title": TITLE, "text": text, "items": items,
               "table": {"columns": ["destination", *names], "rows": rows}}
    return {"cells": cells, "counts": counts, "section": section}
