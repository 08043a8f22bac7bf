# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The report model the templates render (schema_version 1): plain data, JSON-serialisable, deterministic for the
# same input. No escaping here: escaping belongs to each format (see _render).
from __future__ import annotations

import typing as t

from ...module_utils._epns import DEGRADED_WHY
from ._compare import comparison
from ._normalise import ReportInputError, host_row, normalize_sections, phase_columns
from ._states import CELL_STATES, ROW_STATES, STATE_LABELS
from ._summary import column_totals, failure_legend, host_totals, summary_lines
from ._text import natural_key

REPORT_SCHEMA_VERSION = 1


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
) -> t.Dict[str, t.Any]:
    """The report model: plain data (JSON-serialisable), deterministic for the same input.

    ``phases`` is the output of :func:`normalize_phases`. ``class_info`` maps a failure class to its
    explanation for the legend (a string, a mapping or an object with ``explanation`` and ``hint``); it
    defaults to the collection's own ``_epns.FAILURE_CLASSES``.
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
    report["summary_lines"] = summary_lines(report)
    return report
