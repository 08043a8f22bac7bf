# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What a phase adds up to: hosts per state, cells per state and column, the failure classes present (with
# their explanation), and one terminal line per host.
from __future__ import annotations

import typing as t

from ...module_utils._epns import FAILURE_CLASSES
from ._normalise import optional_text
from ._states import CELL_FAILED, CELL_OK, CELL_PROVEN_BY_AUTH, CELL_STATES, ROW_STATES, STATE_LABELS
from ._text import plain_text


def host_totals(rows: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, int]:
    totals = {state: 0 for state in ROW_STATES}
    for row in rows:
        totals[row["state"]] += 1
    totals["total"] = len(rows)
    return totals


def column_totals(
    columns: t.Sequence[t.Mapping[str, t.Any]], rows: t.Sequence[t.Mapping[str, t.Any]]
) -> t.List[t.Dict[str, t.Any]]:
    out = []
    for i, column in enumerate(columns):
        counts = {state: 0 for state in CELL_STATES}
        for row in rows:
            counts[row["cells"][i]["state"]] += 1
        counts["working"] = counts[CELL_OK] + counts[CELL_PROVEN_BY_AUTH]
        counts["tested"] = counts["working"] + counts[CELL_FAILED]
        out.append({"column": column["id"], **counts})
    return out


def failure_legend(
    rows: t.Sequence[t.Mapping[str, t.Any]], class_info: t.Optional[t.Mapping[str, t.Any]],
    server_columns: t.Sequence[bool] = (),
) -> t.List[t.Dict[str, t.Any]]:
    """The failure classes present in this phase, with an explanation and a hint each (server_columns: which
    columns are ESET PROTECT server paths, whose own hints stay in their cells)."""
    found: t.Dict[str, t.Dict[str, t.Any]] = {}
    hosts: t.Dict[str, t.Set[str]] = {}

    def add(row: t.Mapping[str, t.Any], name: str, hint: t.Optional[str], failed_path: bool) -> None:
        entry = found.setdefault(name, {"class": name, "hosts": 0, "paths": 0, "explanation": None, "hint": None})
        entry["paths"] += 1 if failed_path else 0
        hosts.setdefault(name, set()).add(row["host"])
        entry["hosts"] = len(hosts[name])
        if entry["hint"] is None and hint:
            entry["hint"] = hint

    for row in rows:
        dns = row["dns"]
        if dns and dns["failure_class"]:
            add(row, dns["failure_class"], dns["hint"], False)
        for i, cell in enumerate(row["cells"]):
            # A server path's hint is about the ESET PROTECT server: the legend's hint stays the EPNS one.
            server = bool(i < len(server_columns) and server_columns[i])
            if cell["failure_class"]:
                add(row, cell["failure_class"], None if server else cell["hint"], True)
            # Per-address failures of a path that works (or fails for another reason) belong in the legend too.
            for attempt in cell["attempts"]:
                failure = attempt["failure"]
                if failure and failure["class"] != cell["failure_class"]:
                    add(row, failure["class"], failure["hint"], False)
    known = FAILURE_CLASSES if class_info is None else class_info
    for name, entry in found.items():
        info = known.get(name)
        if isinstance(info, str):
            entry["explanation"] = info
        elif isinstance(info, t.Mapping):
            entry["explanation"] = optional_text(info.get("explanation"))
            entry["hint"] = entry["hint"] or optional_text(info.get("hint"))
        elif info is not None:  # _epns.FailureClass (a named tuple)
            entry["explanation"] = optional_text(getattr(info, "explanation", None))
            entry["hint"] = entry["hint"] or optional_text(getattr(info, "hint", None))
    return sorted(found.values(), key=lambda e: e["class"])


def _failing(problems: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    return "; ".join(
        "{}: {}{}".format(p["column"], p["failure_class"], " at {}".format(p["stage"]) if p["stage"] else "")
        for p in problems
    )


def summary_lines(report: t.Mapping[str, t.Any]) -> t.List[str]:
    """One terminal-safe line per host of the last phase; with several phases, the verdict's way there."""
    phases = report["phases"]
    last = phases[-1]
    first_state = {row["host"]: row["state"] for row in phases[0]["rows"]} if len(phases) > 1 else {}
    lines = []
    for row in last["rows"]:
        verdict = row["label"]
        if len(phases) > 1:
            before = first_state.get(row["host"])
            verdict = "{} -> {}".format(STATE_LABELS[before] if before else "absent", row["label"])
        detail = row["verdict_reason"]
        epns = [p for p in row["problems"] if not p.get("server")]
        if epns:
            failing = _failing(epns)
            detail = f"{detail} (failing: {failing})" if detail else f"failing: {failing}"
        if row.get("server_verdict"):
            server = [p for p in row["problems"] if p.get("server")]
            detail += "; ESET PROTECT server {}{}".format(
                row["server_verdict"], f" (failing: {_failing(server)})" if server else "")
        lines.append(
            plain_text(
                "{}: {} - {}".format(row["host"], verdict, detail) if detail else "{}: {}".format(row["host"], verdict)
            )
        )
    return lines
