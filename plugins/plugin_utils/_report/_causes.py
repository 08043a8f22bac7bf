# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Causes first: the failing cells of a phase grouped by failure class x stage x column (the path), each with its
# fix, the hosts behind it and how many of them this fix alone would bring back. One pass over the cells.
from __future__ import annotations

import re
import typing as t

from ...module_utils._epns import FAILURE_CLASSES
from ._normalise import optional_text
from ._states import CELL_FAILED, DEGRADED, SERVER_ROLE, UNREACHABLE
from ._text import natural_key

# What a class looks like from the admin's chair, short enough for a title ("8883 direct: dropped on the way").
_SHORT = {
    "dns_no_answer": "no DNS answer", "dns_nxdomain": "name does not exist", "dns_servfail": "DNS server failure",
    "dns_refused": "DNS refused", "dns_timeout": "DNS times out", "dns_sinkholed": "DNS answer blocked (sinkhole)",
    "tcp_timeout": "dropped on the way", "tcp_refused": "refused", "tcp_unreachable": "no route",
    "proxy_unreachable": "proxy unreachable", "proxy_refused": "proxy refuses the tunnel",
    "proxy_bad_response": "proxy answers wrongly", "tls_handshake_failed": "TLS handshake fails",
    "tls_untrusted": "certificate not trusted", "tls_intercepted": "TLS intercepted",
    "tls_client_cert_required": "client certificate required", "mqtt_no_connack": "no MQTT answer",
    "mqtt_bad_response": "MQTT answer wrong", "mqtt_refused": "MQTT refused", "idle_dropped": "idle connection cut",
    "timeout": "times out", "connection_reset": "connection reset", "probe_error": "probe error",
}
_SLUG = re.compile(r"[^a-z0-9]+")


def cause_key(failure_class: str, stage: t.Optional[str], column: str) -> t.Tuple[str, str, str]:
    return failure_class, stage or "", column


def cause_id(key: t.Tuple[str, str, str]) -> str:
    failure_class, stage, column = key
    return "cause-" + _SLUG.sub("-", f"{column} {failure_class} {stage}".lower()).strip("-")


def cause_title(failure_class: str, column: str) -> str:
    return "{}: {}".format(column, _SHORT.get(failure_class, failure_class.replace("_", " ")))


def _class_text(failure_class: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    info = FAILURE_CLASSES.get(failure_class)
    if info is None:
        return None, None
    return optional_text(info.explanation), optional_text(info.hint)


def _improves(state: str, column: t.Mapping[str, t.Any]) -> bool:
    """Would this path working change the host's verdict for the better? A primary path makes a degraded or
    unreachable host reachable; any EPNS path makes an unreachable one at least degraded. Server paths never count:
    they are not in the verdict."""
    if column.get("server") or state not in (DEGRADED, UNREACHABLE):
        return False
    return column.get("role") == "primary" or state == UNREACHABLE


def phase_causes(phase: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    """The causes of one phase, most hosts first (``report.causes``)."""
    columns = phase["columns"]
    found: t.Dict[t.Tuple[str, str, str], t.Dict[str, t.Any]] = {}
    names: t.Dict[t.Tuple[str, str, str], t.Dict[str, None]] = {}
    reach: t.Dict[t.Tuple[str, str, str], t.Dict[str, None]] = {}
    for row in phase["rows"]:
        for column, cell in zip(columns, row["cells"]):
            if cell["state"] != CELL_FAILED:
                continue
            key = cause_key(cell["failure_class"] or "unknown", cell["stage"], column["id"])
            entry = found.get(key)
            if entry is None:
                entry = found[key] = _new_cause(key, column, cell)
                names[key], reach[key] = {}, {}
            names[key][row["host"]] = None
            if _improves(row["state"], column):
                reach[key][row["host"]] = None
    for key, entry in found.items():
        entry["host_names"] = sorted(names[key], key=natural_key)
        entry["hosts"] = len(entry["host_names"])
        entry["would_reach"] = len(reach[key])
    return sorted(found.values(),
                  key=lambda c: (-c["hosts"], -c["would_reach"], c["role"] == SERVER_ROLE, c["title"], c["id"]))


def _new_cause(key: t.Tuple[str, str, str], column: t.Mapping[str, t.Any], cell: t.Mapping[str, t.Any]
               ) -> t.Dict[str, t.Any]:
    failure_class, stage, column_id = key
    explanation, class_hint = _class_text(failure_class)
    server = bool(column.get("server"))
    return {
        "id": cause_id(key),
        "failure_class": failure_class,
        "stage": stage or None,
        "column": column_id,
        "role": SERVER_ROLE if server else "epns",
        "title": cause_title(failure_class, column_id),
        "explanation": explanation,
        # A server path's own hint is about the ESET PROTECT server; the cell's hint is the probe's advice for it.
        "fix": cell["hint"] or class_hint,
        "hosts": 0,
        "would_reach": 0,
        "host_names": [],
    }


def causes_of_hosts(causes: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.List[str]]:
    """host -> the ids of its causes (for the egress groups), in the causes' order."""
    out: t.Dict[str, t.List[str]] = {}
    for cause in causes:
        for host in cause["host_names"]:
            out.setdefault(host, []).append(cause["id"])
    return out


def compare_causes(first: t.Sequence[t.Mapping[str, t.Any]], last: t.Sequence[t.Mapping[str, t.Any]]
                   ) -> t.List[t.Dict[str, t.Any]]:
    """Hosts per cause before and after (``report.comparison.causes``): the biggest change first."""
    rows: t.Dict[str, t.Dict[str, t.Any]] = {}
    for when, causes in (("before", first), ("after", last)):
        for cause in causes:
            row = rows.setdefault(cause["id"], {
                "id": cause["id"], "title": cause["title"], "failure_class": cause["failure_class"],
                "stage": cause["stage"], "column": cause["column"], "before": 0, "after": 0})
            row[when] = cause["hosts"]
    for row in rows.values():
        row["delta"] = row["after"] - row["before"]
    return sorted(rows.values(), key=lambda r: (-abs(r["delta"]), -r["after"], r["title"], r["id"]))
