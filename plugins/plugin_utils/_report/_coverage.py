# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# ESET's view beside the probe's: the devices ESET knows that were not probed (and why), probed hosts ESET does not
# know, agents whose last replication is old; and the inferred lines for devices Ansible cannot probe, taken only
# from probed hosts behind the same public address, local prefix and proxy in effect. An inferred line is never a
# verdict, never counted as probed, and says nothing about the device's own host firewall.
from __future__ import annotations

import datetime
import typing as t

from ._fleet import NO_FACTS, HostFacts, local_prefix, parse_time
from ._normalise import optional_text
from ._states import DEGRADED, NOT_PROBED, REACHABLE, UNREACHABLE
from ._text import natural_key

Basis = t.Tuple[t.Optional[str], t.Optional[str], t.Optional[str]]
UNKNOWN = "unknown"
_WORSE_FIRST = {UNREACHABLE: 0, DEGRADED: 1, REACHABLE: 2}
_REASON_TEXT = {
    "windows": "Windows: the collection's modules run on Linux hosts only",
    "macos": "macOS: the collection's modules run on Linux hosts only",
    "other_os": "not a Linux host: the collection's modules run on Linux hosts only",
    "not_in_play": "in the inventory but not in this play",
}


def _reason(facts: HostFacts, row: t.Optional[t.Mapping[str, t.Any]]) -> t.Tuple[str, str]:
    family = (facts.os_family or "").lower()
    if family in ("windows", "macos"):
        return family, _REASON_TEXT[family]
    if facts.probe_supported is False or facts.skipped:
        return "other_os", _REASON_TEXT["other_os"] + (f" (ESET says {family})" if family else "")
    if row is not None:
        return "unreachable", row.get("verdict_reason") or "Ansible could not run the probe there"
    return "not_in_play", _REASON_TEXT["not_in_play"]


def not_probed_hosts(rows: t.Mapping[str, t.Mapping[str, t.Any]], facts: t.Mapping[str, HostFacts]
                     ) -> t.List[str]:
    """Hosts without a verdict: rows not probed, and ESET devices the play never reached, in natural order."""
    hosts = {host: None for host, row in rows.items() if row["state"] == NOT_PROBED}
    for host, one in facts.items():
        if one.known_to_eset and host not in rows:
            hosts[host] = None
    return sorted(hosts, key=natural_key)


def coverage(
    rows: t.Mapping[str, t.Mapping[str, t.Any]],
    facts: t.Mapping[str, HostFacts],
    eset_inventory: t.Optional[t.Mapping[str, t.Any]],
    stale_after: int,
    now: datetime.datetime,
) -> t.Optional[t.Dict[str, t.Any]]:
    """``report.coverage``; None without ESET inventory data."""
    if eset_inventory is None and not any(one.known_to_eset for one in facts.values()):
        return None
    not_probed = []
    for host in not_probed_hosts(rows, facts):
        one = facts.get(host, NO_FACTS)
        if not one.known_to_eset:
            continue
        reason, text = _reason(one, rows.get(host))
        not_probed.append({"host": host, "display_name": one.display_name, "reason": reason, "text": text})
    for left in (eset_inventory or {}).get("left_out") or ():
        if isinstance(left, t.Mapping):
            name = optional_text(left.get("display_name")) or optional_text(left.get("uuid")) or "?"
            not_probed.append({"host": name, "display_name": optional_text(left.get("display_name")),
                               "reason": "excluded", "text": optional_text(left.get("reason")) or "left out"})
    unknown = [host for host, row in rows.items() if row["state"] != NOT_PROBED
               and not facts.get(host, NO_FACTS).known_to_eset]
    return {
        "stale_after_seconds": stale_after,
        "not_probed": not_probed,
        "unknown_to_eset": sorted(unknown, key=natural_key),
        "stale": _stale(rows, facts, stale_after, now),
    }


def _stale(rows: t.Mapping[str, t.Mapping[str, t.Any]], facts: t.Mapping[str, HostFacts], stale_after: int,
           now: datetime.datetime) -> t.List[t.Dict[str, t.Any]]:
    out = []
    for host in sorted(facts, key=natural_key):
        one = facts[host]
        when = parse_time(one.last_sync) if one.known_to_eset else None
        if when is None:
            continue
        age = int((now - when).total_seconds())
        if age > stale_after:
            row = rows.get(host)
            out.append({"host": host, "last_sync": one.last_sync, "age_seconds": age,
                        "state": row["state"] if row is not None else NOT_PROBED})
    return out


def basis_of(facts: HostFacts, source: t.Optional[str] = None) -> Basis:
    """What makes two devices share a path: ESET's public address, the local prefix, the agent's proxy."""
    return facts.public_ip, local_prefix(facts.local_ip) or local_prefix(source), facts.proxy


class _Neighbours:
    """Probed hosts per basis: how many in each state, and the first (natural order) of each state."""

    def __init__(self) -> None:
        self.counts: t.Dict[Basis, t.Dict[str, int]] = {}
        self.first: t.Dict[Basis, t.Dict[str, str]] = {}

    def add(self, basis: Basis, host: str, state: str) -> None:
        if basis[0] is None or basis[1] is None:
            return  # without a public address and a prefix, nothing can be inferred from this host
        counts = self.counts.setdefault(basis, {})
        counts[state] = counts.get(state, 0) + 1
        self.first.setdefault(basis, {}).setdefault(state, host)

    def shown_by(self, basis: Basis) -> t.Optional[t.Tuple[str, str]]:
        """(host, state): the most common state there, the worse one on a tie."""
        counts = self.counts.get(basis)
        if basis[0] is None or basis[1] is None or not counts:
            return None
        state = min(counts, key=lambda s: (-counts[s], _WORSE_FIRST.get(s, 3)))
        return self.first[basis][state], state


def inferred_lines(
    rows: t.Mapping[str, t.Mapping[str, t.Any]],
    facts: t.Mapping[str, HostFacts],
    sources: t.Mapping[str, t.Optional[str]],
    egress_of: t.Mapping[str, str],
    egress_labels: t.Mapping[str, str],
) -> t.List[t.Dict[str, t.Any]]:
    """``report.inferred``: one line per host without a verdict (rows in natural order)."""
    neighbours = _Neighbours()
    for host, row in rows.items():
        if row["state"] != NOT_PROBED:
            neighbours.add(basis_of(facts.get(host, NO_FACTS), sources.get(host)), host, row["state"])
    lines = []
    for host in not_probed_hosts(rows, facts):
        one = facts.get(host, NO_FACTS)
        basis = basis_of(one)
        shown = neighbours.shown_by(basis)
        from_host, state = shown if shown else (None, None)
        egress = egress_of.get(from_host) if from_host else None
        site = egress_labels.get(egress or "") or f"public {basis[0]}, {basis[1]}"
        lines.append({
            "host": host,
            "display_name": one.display_name,
            "os_family": one.os_family,
            "basis": {"public_ip": basis[0], "local_prefix": basis[1], "proxy": basis[2]},
            "from_host": from_host,
            "egress": egress,
            "neighbour_state": state,
            "text": f"the path of site {site}, as shown by host {from_host}" if from_host else UNKNOWN,
        })
    return lines


def published_warnings(
    rows: t.Sequence[t.Mapping[str, t.Any]],
    outside: t.Optional[t.Callable[[t.Sequence[str]], t.List[str]]],
) -> t.List[t.Dict[str, t.Any]]:
    """``report.warnings``: a host whose DNS answer for EPNS lies outside ESET's published addresses (an allowlist
    built from the list would block it). A warning only: the verdicts stay the probe's."""
    if outside is None:
        return []
    seen: t.Dict[t.Tuple[str, ...], t.List[str]] = {}
    out = []
    for row in rows:
        dns = row.get("dns")
        addresses = tuple(dns["addresses"]) if dns else ()
        if not addresses:
            continue
        if addresses not in seen:
            seen[addresses] = list(outside(addresses))
        for address in seen[addresses]:
            out.append({
                "kind": "outside_published",
                "host": row["host"],
                "address": address,
                "text": f"epns.eset.com resolved to {address} on {row['host']}, outside ESET's published EPNS "
                        "addresses: a firewall allowlist built from that list would block it",
            })
    return out
