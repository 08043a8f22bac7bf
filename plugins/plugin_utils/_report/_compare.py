# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Before and after: the verdict of each host in each phase, and what changed between the first and the last.
from __future__ import annotations

import typing as t

from ._states import STATE_LABELS
from ._text import natural_key


def comparison(phases: t.Sequence[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    """Verdict of each host in each phase, and what changed between the first and the last phase."""
    if len(phases) < 2:
        return None
    hosts: t.Dict[str, None] = {}
    for phase in phases:
        for row in phase["rows"]:
            hosts.setdefault(row["host"], None)
    by_host = [{r["host"]: r for r in phase["rows"]} for phase in phases]
    all_columns = _ordered_union([p["columns"] for p in phases])
    rows = []
    for host in sorted(hosts, key=natural_key):
        states = []
        cells_by_phase = []
        for phase, index in zip(phases, by_host):
            row = index.get(host)
            states.append(row["state"] if row else None)
            cells_by_phase.append({c["id"]: row["cells"][c["index"]]["state"] for c in phase["columns"]} if row else {})
        first, last = cells_by_phase[0], cells_by_phase[-1]
        cell_changes = [
            {"column": col, "from": first.get(col), "to": last.get(col)}
            for col in all_columns
            if first.get(col) != last.get(col)
        ]
        rows.append(
            {
                "host": host,
                "states": states,
                "labels": [STATE_LABELS[s] if s else "absent" for s in states],
                "changed": states[0] != states[-1] or bool(cell_changes),
                "cell_changes": cell_changes,
            }
        )
    return {
        "phases": [p["title"] for p in phases],
        "rows": rows,
        "changed": sum(1 for r in rows if r["changed"]),
    }


def _ordered_union(column_lists: t.Sequence[t.Sequence[t.Mapping[str, t.Any]]]) -> t.List[str]:
    out: t.Dict[str, None] = {}
    for columns in column_lists:
        for column in columns:
            out.setdefault(column["id"], None)
    return list(out)
