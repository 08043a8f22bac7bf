# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The report model the templates render (schema_version 2, docs/report-schema.md): plain data, JSON-serialisable,
# deterministic for the same input. No escaping here: escaping belongs to each format (see _render).
from __future__ import annotations

import datetime
import typing as t

from ...module_utils._epns import DEGRADED_WHY, PRIMARY_PORT
from ._causes import causes_of_hosts, compare_causes, phase_causes
from ._compare import comparison
from ._coverage import coverage, inferred_lines, published_warnings
from ._egress import egress_groups, place_inferred
from ._fleet import evidence, parse_duration, parse_time, probe_egress, read_hosts_info
from ._normalise import ReportInputError, host_row, normalize_sections, phase_columns
from ._states import CELL_STATES, ROW_STATES, STATE_LABELS
from ._summary import column_totals, failure_legend, host_totals, summary_lines
from ._text import natural_key

REPORT_SCHEMA_VERSION = 2
DEFAULT_STALE_AFTER = "1d"


class FleetContext(t.NamedTuple):
    """What the report knows besides the probe results (all optional): the inventory's facts per host, the
    inventory plugin's summary, the stale threshold, ESET's published addresses and the check against them."""

    hosts_info: t.Optional[t.Mapping[str, t.Any]] = None
    eset_inventory: t.Optional[t.Mapping[str, t.Any]] = None
    stale_after: t.Union[str, int] = DEFAULT_STALE_AFTER
    published: t.Optional[t.Mapping[str, t.Any]] = None  # {source, date, path}
    outside_published: t.Optional[t.Callable[[t.Sequence[str]], t.List[str]]] = None


def build_phase(
    results: t.Mapping[str, t.Any],
    label: t.Optional[str] = None,
    index: int = 0,
    class_info: t.Optional[t.Mapping[str, t.Any]] = None,
) -> t.Dict[str, t.Any]:
    """One run of the probe over the fleet: columns, one row per host, totals and a failure legend."""
    results = {str(h): r for h, r in results.items()}
    hosts = sorted(results, key=natural_key)
    columns = phase_columns(hosts, results)
    rows = [host_row(host, results[host], columns) for host in hosts]
    return {
        "index": index,
        "phase": label,
        "title": label or "Results",
        "anchor": f"phase-{index + 1}",
        "columns": columns,
        "rows": rows,
        "totals": host_totals(rows),
        "column_totals": column_totals(columns, rows),
        "failure_classes": failure_legend(rows, class_info, [bool(c.get("server")) for c in columns]),
        "server_columns": sum(1 for c in columns if c.get("server")),
    }


def build_report(
    phases: t.Sequence[t.Mapping[str, t.Any]],
    title: str = "EPNS reachability",
    generated_at: t.Optional[str] = None,
    sections: t.Optional[t.Sequence[t.Any]] = None,
    class_info: t.Optional[t.Mapping[str, t.Any]] = None,
    fleet: t.Optional[FleetContext] = None,
) -> t.Dict[str, t.Any]:
    """The report model: plain data (JSON-serialisable), deterministic for the same input.

    ``phases`` is the output of :func:`normalize_phases`. ``class_info`` maps a failure class to its
    explanation for the legend (a string, a mapping or an object with ``explanation`` and ``hint``); it
    defaults to the collection's own ``_epns.FAILURE_CLASSES``. ``fleet`` adds the causes' neighbours: egress
    groups, ESET coverage, inferred lines and warnings (see FleetContext).
    """
    if not phases:
        raise ReportInputError("no results to report")
    built = [build_phase(p["results"], p.get("phase"), i, class_info) for i, p in enumerate(phases)]
    labels = [p["title"] for p in built]
    if len(set(labels)) != len(labels):
        for p in built:
            p["title"] = f"{p['index'] + 1}. {p['title']}"
    report: t.Dict[str, t.Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "title": str(title),
        "generated_at": generated_at,
        "phases": built,
        "comparison": comparison(built),
        "sections": normalize_sections(sections),
        "summary": dict(built[-1]["totals"]),
        "legend": {
            "degraded_why": DEGRADED_WHY or None,
            "row_states": [{"state": s, "label": STATE_LABELS[s]} for s in ROW_STATES],
            "cell_states": [{"state": s, "label": STATE_LABELS.get(s, "not probed")} for s in CELL_STATES],
        },
    }
    report.update(_fleet_parts(built, phases[-1]["results"], fleet or FleetContext(), generated_at))
    if report["comparison"] is not None:
        report["comparison"]["causes"] = compare_causes(phase_causes(built[0]), report["causes"])
    report["summary_lines"] = summary_lines(report)
    return report


def _fleet_parts(
    built: t.Sequence[t.Dict[str, t.Any]], results: t.Mapping[str, t.Any], fleet: FleetContext,
    generated_at: t.Optional[str],
) -> t.Dict[str, t.Any]:
    """causes, egress, coverage, inferred, warnings and published of the last phase; every row of every phase
    gains its egress group (of the last phase) and the agent's own connection."""
    facts = read_hosts_info(fleet.hosts_info)
    stale_after = parse_duration(fleet.stale_after)
    last = built[-1]
    causes = phase_causes(last)
    egress, egress_of = egress_groups(last["rows"], results, facts, causes_of_hosts(causes))
    rows = {row["host"]: row for row in last["rows"]}
    sources = {host: probe_egress(results.get(host))[0] for host in rows}
    inferred = inferred_lines(rows, facts, sources, egress_of, {g["id"]: g["label"] for g in egress})
    place_inferred(egress, inferred, rows)
    inferred_egress = {line["host"]: line["egress"] for line in inferred}
    for phase in built:
        primary = next((c["port"] for c in phase["columns"] if c.get("role") == "primary" and c.get("port")),
                       PRIMARY_PORT)
        for row in phase["rows"]:
            one = facts.get(row["host"])
            row["egress"] = egress_of.get(row["host"]) or inferred_egress.get(row["host"])
            row["agent_connection"] = one.agent_connection if one else None
            row["evidence"] = evidence(one, row["state"], primary)
    now = parse_time(generated_at) or datetime.datetime.now(datetime.timezone.utc)
    eset_inventory = fleet.eset_inventory if isinstance(fleet.eset_inventory, t.Mapping) else None
    return {
        "causes": causes,
        "egress": egress,
        "coverage": coverage(rows, facts, eset_inventory, stale_after, now),
        "inferred": inferred,
        "warnings": published_warnings(last["rows"], fleet.outside_published),
        "published": dict(fleet.published) if fleet.published else None,
    }
