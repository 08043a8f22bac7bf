# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: the fleet report model. Not a public API; it may change without notice.
#
# A pure function from probe results (the `epns_probe` return value of each host, see docs/architecture.md)
# to plain data that the report templates render. Standard library only, no Ansible imports, no I/O, no
# escaping: escaping belongs to each renderer (see _report_render.py).
from __future__ import annotations

import re
import typing as t

try:  # the one home of the failure classes' wording (stdlib only, shared with the probe)
    from ..module_utils._epns import DEGRADED_WHY as _DEGRADED_WHY
    from ..module_utils._epns import FAILURE_CLASSES as _FAILURE_CLASSES
except ImportError:  # pragma: no cover - only when this file is used outside the collection
    _FAILURE_CLASSES = {}
    _DEGRADED_WHY = ""

REPORT_SCHEMA_VERSION = 1

# Row states: the probe verdicts, plus hosts that could not be probed at all.
REACHABLE = "reachable"
DEGRADED = "degraded"
UNREACHABLE = "unreachable"
NOT_PROBED = "not_probed"
ROW_STATES = (REACHABLE, DEGRADED, UNREACHABLE, NOT_PROBED)
_VERDICTS = (REACHABLE, DEGRADED, UNREACHABLE)

# Cell states.
CELL_OK = "ok"
CELL_PROVEN_BY_AUTH = "proven_by_auth"
CELL_FAILED = "failed"
CELL_NOT_TESTED = "not_tested"  # this host has no such path (e.g. no proxy configured there)
CELL_NOT_PROBED = "not_probed"  # the host has no probe result at all
CELL_STATES = (CELL_OK, CELL_PROVEN_BY_AUTH, CELL_FAILED, CELL_NOT_TESTED, CELL_NOT_PROBED)

# Cell tones (what a renderer colours): a working path of a degraded host is "fallback" (amber).
TONE_OK = "ok"
TONE_AUTH = "auth"
TONE_FALLBACK = "fallback"
TONE_FAILED = "failed"
TONE_NONE = "none"

STATE_LABELS = {
    REACHABLE: "reachable",
    DEGRADED: "degraded",
    UNREACHABLE: "unreachable",
    NOT_PROBED: "not probed",
    CELL_OK: "ok",
    CELL_PROVEN_BY_AUTH: "ok (proven by auth)",
    CELL_FAILED: "failed",
    CELL_NOT_TESTED: "not tested",
}

_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NATURAL = re.compile(r"(\d+)")


class ReportInputError(ValueError):
    """The input cannot be turned into a report (wrong shape); the message says which part."""


# --------------------------------------------------------------------------------------------------
# small helpers


def redact_url_credentials(value: str) -> str:
    """Replace the user:password part of any URL in ``value`` with ``***``."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", value)


def redact(value: t.Any) -> t.Any:
    """Copy of ``value`` (plain data) with URL credentials redacted in every string, keys included."""
    if isinstance(value, str):
        return redact_url_credentials(str(value))
    if isinstance(value, t.Mapping):
        return {redact(str(k)): redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_url_credentials(str(value))


def plain_text(value: t.Any) -> str:
    """One line of terminal-safe text: control characters (ANSI escapes, newlines) become visible escapes."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def natural_key(name: str) -> t.Tuple[t.Tuple[t.Tuple[int, t.Union[int, str]], ...], str]:
    """Sort key: agent2 before agent10; the raw name breaks ties, so the order is total and stable."""
    parts: t.List[t.Tuple[int, t.Union[int, str]]] = []
    for chunk in _NATURAL.split(name.lower()):
        if not chunk:
            continue
        parts.append((0, int(chunk)) if chunk.isdigit() else (1, chunk))
    return tuple(parts), name


def _opt_str(value: t.Any) -> t.Optional[str]:
    if value is None:
        return None
    text = str(value)
    return redact_url_credentials(text) if text != "" else None


def _opt_int(value: t.Any) -> t.Optional[int]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _mapping(value: t.Any) -> t.Mapping[str, t.Any]:
    return value if isinstance(value, t.Mapping) else {}


def _sequence(value: t.Any) -> t.List[t.Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _dn_text(value: t.Any) -> t.Optional[str]:
    """A certificate name as text, whether the probe gives a string, a mapping or a list of pairs."""
    if value is None or value == "":
        return None
    if isinstance(value, t.Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                items.append(f"{item[0]}={item[1]}")
            else:
                items.append(str(item))
        return ", ".join(items)
    return str(value)


# --------------------------------------------------------------------------------------------------
# failures, attempts, paths


def _failure(value: t.Any) -> t.Optional[t.Dict[str, t.Any]]:
    if not isinstance(value, t.Mapping):
        return None
    return {
        "class": _opt_str(value.get("class")) or "unknown",
        "stage": _opt_str(value.get("stage")),
        "message": _opt_str(value.get("message")),
        "raw_error": _opt_str(value.get("raw_error")),
        "hint": _opt_str(value.get("hint")),
        "elapsed_ms": _opt_int(value.get("elapsed_ms")),
    }


def _attempt(value: t.Any) -> t.Dict[str, t.Any]:
    raw = _mapping(value)
    failure = _failure(raw.get("failure"))
    tls = _mapping(raw.get("tls"))
    return {
        "address": _opt_str(raw.get("address")),
        "family": _opt_str(raw.get("family")),
        "ok": bool(raw.get("ok")),
        "proven_by_auth": bool(raw.get("proven_by_auth")),
        "failure": failure,
        "stages": [
            {
                "name": _opt_str(_mapping(s).get("name")),
                "ok": bool(_mapping(s).get("ok")),
                "elapsed_ms": _opt_int(_mapping(s).get("elapsed_ms")),
            }
            for s in _sequence(raw.get("stages"))
        ],
        "proxy_status": _opt_str(raw.get("proxy_status")),
        "tls_issuer": _dn_text(tls.get("issuer")),
        "tls_subject": _dn_text(tls.get("subject")),
        "tls_verified": tls.get("verified") if isinstance(tls.get("verified"), bool) else None,
    }


def _family_label(family: t.Optional[str]) -> str:
    return {"ipv4": "IPv4", "ipv6": "IPv6"}.get(family or "", family or "address")


def _attempt_note(attempt: t.Mapping[str, t.Any]) -> str:
    where = "{} {}".format(_family_label(attempt["family"]), attempt["address"] or "?")
    if attempt["ok"]:
        return f"{where}: ok (proven by auth)" if attempt["proven_by_auth"] else f"{where}: ok"
    failure = attempt["failure"] or {}
    text = "{}: {}".format(where, failure.get("class") or "failed")
    if failure.get("stage"):
        text += " at {}".format(failure["stage"])
    if failure.get("message"):
        text += " ({})".format(failure["message"])
    return text


def _first(values: t.Iterable[t.Optional[str]]) -> t.Optional[str]:
    for value in values:
        if value:
            return value
    return None


def _cell_from_path(path: t.Mapping[str, t.Any], row_state: str) -> t.Dict[str, t.Any]:
    attempts = [_attempt(a) for a in _sequence(path.get("attempts"))]
    failure = _failure(path.get("failure"))
    ok = bool(path.get("ok"))
    proven_by_auth = ok and bool(path.get("proven_by_auth"))
    if ok:
        state = CELL_PROVEN_BY_AUTH if proven_by_auth else CELL_OK
        failure = None
    else:
        state = CELL_FAILED
        if failure is None:
            # A failed path without a failure object: take the first failing attempt's.
            failure = _first_failure(attempts) or {
                "class": "unknown",
                "stage": None,
                "message": "the probe reported this path as failed without a reason",
                "raw_error": None,
                "hint": None,
                "elapsed_ms": None,
            }
    if ok:
        tone = TONE_FALLBACK if row_state == DEGRADED else (TONE_AUTH if proven_by_auth else TONE_OK)
    else:
        tone = TONE_FAILED
    # The attempt that decided the path: a working one if the path works, else the first failing one.
    deciding = [a for a in attempts if a["ok"] == ok] or attempts
    elapsed = _opt_int(path.get("elapsed_ms"))
    if state == CELL_FAILED:
        text = failure["class"] if failure else "failed"
        if failure and failure["stage"]:
            text += " at " + failure["stage"]
    else:
        text = STATE_LABELS[state]
        if elapsed is not None:
            text += f" {elapsed} ms"
    mixed = len(attempts) > 1
    return {
        "state": state,
        "label": STATE_LABELS[state],
        "tone": tone,
        "text": text,
        "ok": ok,
        "proven_by_auth": proven_by_auth,
        "failure_class": failure["class"] if failure else None,
        "stage": failure["stage"] if failure else None,
        "message": failure["message"] if failure else None,
        "raw_error": failure["raw_error"] if failure else None,
        "hint": failure["hint"] if failure else None,
        "elapsed_ms": elapsed,
        "note": _opt_str(path.get("note")),
        "address_notes": [_attempt_note(a) for a in attempts] if mixed else [],
        "proxy_status": _first(a["proxy_status"] for a in deciding),
        "tls_issuer": _first(a["tls_issuer"] for a in deciding),
        "tls_subject": _first(a["tls_subject"] for a in deciding),
        "attempts": attempts,
    }


def _first_failure(attempts: t.Sequence[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
    for attempt in attempts:
        if attempt["failure"]:
            return dict(attempt["failure"])
    return None


def _empty_cell(state: str) -> t.Dict[str, t.Any]:
    return {
        "state": state,
        "label": STATE_LABELS.get(state, "not probed"),
        "tone": TONE_NONE,
        "text": STATE_LABELS.get(state, "not probed"),
        "ok": False,
        "proven_by_auth": False,
        "failure_class": None,
        "stage": None,
        "message": None,
        "raw_error": None,
        "hint": None,
        "elapsed_ms": None,
        "note": None,
        "address_notes": [],
        "proxy_status": None,
        "tls_issuer": None,
        "tls_subject": None,
        "attempts": [],
    }


# --------------------------------------------------------------------------------------------------
# hosts


def _path_id(path: t.Mapping[str, t.Any]) -> t.Optional[str]:
    return _opt_str(path.get("id"))


def _not_probed_reason(raw: t.Any) -> str:
    if raw is None:
        return "no probe result"
    if not isinstance(raw, t.Mapping):
        return f"the probe result is not a mapping ({type(raw).__name__})"
    msg = _opt_str(raw.get("msg"))
    if raw.get("unreachable"):
        return f"host unreachable: {msg}" if msg else "host unreachable"
    if raw.get("skipped"):
        reason = _opt_str(raw.get("skip_reason")) or msg
        return f"probe skipped: {reason}" if reason else "probe skipped"
    if raw.get("failed"):
        return f"probe failed: {msg}" if msg else "probe failed without a message"
    if not raw:
        return "no probe result"
    if "verdict" in raw:
        return "unknown verdict {!r}".format(plain_text(raw.get("verdict")))
    return "the probe result has no verdict"


def _is_probe_result(raw: t.Any) -> bool:
    return isinstance(raw, t.Mapping) and raw.get("verdict") in _VERDICTS


def _dns_summary(raw: t.Mapping[str, t.Any]) -> t.Optional[t.Dict[str, t.Any]]:
    dns = raw.get("dns")
    if not isinstance(dns, t.Mapping):
        return None
    failure = _failure(dns.get("failure"))
    return {
        "ok": bool(dns.get("ok")),
        "addresses": [str(a) for a in _sequence(dns.get("addresses"))],
        "elapsed_ms": _opt_int(dns.get("elapsed_ms")),
        "failure_class": failure["class"] if failure else None,
        "message": failure["message"] if failure else None,
        "hint": failure["hint"] if failure else None,
    }


def _column_key(path: t.Mapping[str, t.Any], proxy_order: t.Mapping[str, int]) -> t.Tuple[t.Any, ...]:
    proxy = _opt_str(path.get("proxy"))
    role = _opt_str(path.get("role"))
    port = _opt_int(path.get("port"))
    return (
        0 if proxy is None else 1,
        -1 if proxy is None else proxy_order.get(proxy, len(proxy_order)),
        {"primary": 0, "fallback": 1}.get(role or "", 2),
        port if port is not None else 1 << 17,
    )


def _columns(hosts: t.Sequence[str], results: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    """The union of path ids over all hosts, in the schema's order."""
    proxy_order: t.Dict[str, int] = {}
    seen: t.Dict[str, t.Dict[str, t.Any]] = {}
    first_seen: t.Dict[str, int] = {}
    for host in hosts:
        raw = results[host]
        if not _is_probe_result(raw):
            continue
        for path in _sequence(raw.get("paths")):
            path = _mapping(path)
            pid = _path_id(path)
            if pid is None:
                continue
            proxy = _opt_str(path.get("proxy"))
            if proxy is not None and proxy not in proxy_order:
                proxy_order[proxy] = len(proxy_order)
            if pid not in seen:
                first_seen[pid] = len(first_seen)
                seen[pid] = {
                    "id": pid,
                    "port": _opt_int(path.get("port")),
                    "role": _opt_str(path.get("role")),
                    "proxy": proxy,
                }
    ordered = sorted(
        seen.values(),
        key=lambda c: (*_column_key(c, proxy_order), first_seen[c["id"]]),
    )
    return [dict(c, index=i) for i, c in enumerate(ordered)]


def _row(host: str, raw: t.Any, columns: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    if not _is_probe_result(raw):
        return {
            "host": host,
            "state": NOT_PROBED,
            "label": STATE_LABELS[NOT_PROBED],
            "verdict": None,
            "verdict_reason": _not_probed_reason(raw),
            "working_fallback": None,
            "elapsed_ms": None,
            "dns": None,
            "cells": [_empty_cell(CELL_NOT_PROBED) for _column in columns],
            "problems": [],
        }
    state = str(raw["verdict"])
    by_id: t.Dict[str, t.Mapping[str, t.Any]] = {}
    for path in _sequence(raw.get("paths")):
        path = _mapping(path)
        pid = _path_id(path)
        if pid is not None and pid not in by_id:
            by_id[pid] = path
    cells = []
    for column in columns:
        path = by_id.get(column["id"])
        cells.append(_cell_from_path(path, state) if path is not None else _empty_cell(CELL_NOT_TESTED))
    problems = [
        {"column": column["id"], "failure_class": cell["failure_class"], "stage": cell["stage"]}
        for column, cell in zip(columns, cells)
        if cell["state"] == CELL_FAILED
    ]
    return {
        "host": host,
        "state": state,
        "label": STATE_LABELS[state],
        "verdict": state,
        "verdict_reason": _opt_str(raw.get("verdict_reason")) or "",
        "working_fallback": _opt_str(raw.get("working_fallback")),
        "elapsed_ms": _opt_int(raw.get("elapsed_ms")),
        "dns": _dns_summary(raw),
        "cells": cells,
        "problems": problems,
    }


def _totals(rows: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, int]:
    totals = {state: 0 for state in ROW_STATES}
    for row in rows:
        totals[row["state"]] += 1
    totals["total"] = len(rows)
    return totals


def _column_totals(
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


def _failure_legend(
    rows: t.Sequence[t.Mapping[str, t.Any]], class_info: t.Optional[t.Mapping[str, t.Any]]
) -> t.List[t.Dict[str, t.Any]]:
    """The failure classes present in this phase, with an explanation and a hint each."""
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
        for cell in row["cells"]:
            if cell["failure_class"]:
                add(row, cell["failure_class"], cell["hint"], True)
            # Per-address failures of a path that works (or fails for another reason) belong in the legend too.
            for attempt in cell["attempts"]:
                failure = attempt["failure"]
                if failure and failure["class"] != cell["failure_class"]:
                    add(row, failure["class"], failure["hint"], False)
    known = _FAILURE_CLASSES if class_info is None else class_info
    for name, entry in found.items():
        info = known.get(name)
        if isinstance(info, str):
            entry["explanation"] = info
        elif isinstance(info, t.Mapping):
            entry["explanation"] = _opt_str(info.get("explanation"))
            entry["hint"] = entry["hint"] or _opt_str(info.get("hint"))
        elif info is not None:  # _epns.FailureClass (a named tuple)
            entry["explanation"] = _opt_str(getattr(info, "explanation", None))
            entry["hint"] = entry["hint"] or _opt_str(getattr(info, "hint", None))
    return sorted(found.values(), key=lambda e: e["class"])


# --------------------------------------------------------------------------------------------------
# phases, sections, report


def _check_results(results: t.Any, where: str) -> t.Dict[str, t.Any]:
    if not isinstance(results, t.Mapping):
        raise ReportInputError(f"{where} must be a mapping of host name to probe result, not {type(results).__name__}")
    return {str(host): value for host, value in results.items()}


def normalize_phases(
    results: t.Optional[t.Mapping[str, t.Any]] = None,
    phases: t.Optional[t.Sequence[t.Any]] = None,
    phase: t.Optional[str] = None,
    hosts: t.Optional[t.Sequence[str]] = None,
) -> t.List[t.Dict[str, t.Any]]:
    """Turn the two input forms into ``[{"phase": label or None, "results": {host: result}}]``.

    ``hosts`` lists hosts that must appear in every phase: a host without a result becomes "not probed".
    """
    if (results is None) == (phases is None):
        raise ReportInputError("give exactly one of results and phases")
    if results is not None:
        runs: t.List[t.Dict[str, t.Any]] = [{"phase": phase or None, "results": _check_results(results, "results")}]
    else:
        if not isinstance(phases, (list, tuple)) or not phases:
            raise ReportInputError("phases must be a non-empty list of {phase, results}")
        runs = []
        for i, item in enumerate(phases):
            if not isinstance(item, t.Mapping) or "results" not in item:
                raise ReportInputError(f"phases[{i}] must be a mapping with a results key")
            unknown = sorted(str(k) for k in item if k not in ("phase", "results"))
            if unknown:
                raise ReportInputError(f"phases[{i}] has unknown keys: {', '.join(unknown)}")
            label = item.get("phase")
            runs.append(
                {
                    "phase": str(label) if label not in (None, "") else None,
                    "results": _check_results(item["results"], f"phases[{i}].results"),
                }
            )
    for run in runs:
        for host in hosts or ():
            run["results"].setdefault(str(host), None)
    return runs


def build_phase(
    results: t.Mapping[str, t.Any],
    label: t.Optional[str] = None,
    index: int = 0,
    class_info: t.Optional[t.Mapping[str, t.Any]] = None,
) -> t.Dict[str, t.Any]:
    """One run of the probe over the fleet: columns, one row per host, totals and a failure legend."""
    results = {str(h): r for h, r in results.items()}
    hosts = sorted(results, key=natural_key)
    columns = _columns(hosts, results)
    rows = [_row(host, results[host], columns) for host in hosts]
    return {
        "index": index,
        "phase": label,
        "title": label or "Results",
        "anchor": f"phase-{index + 1}",
        "columns": columns,
        "rows": rows,
        "totals": _totals(rows),
        "column_totals": _column_totals(columns, rows),
        "failure_classes": _failure_legend(rows, class_info),
    }


def _comparison(phases: t.Sequence[t.Mapping[str, t.Any]]) -> t.Optional[t.Dict[str, t.Any]]:
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


def _text_list(value: t.Any, where: str) -> t.List[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ReportInputError(f"{where} must be a list")
    return ["" if v is None else str(v) for v in value]


def normalize_sections(sections: t.Optional[t.Sequence[t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """Extra sections later capabilities add: ``{title, text?, items?, table?: {columns, rows}}``."""
    out = []
    for i, section in enumerate(sections or ()):
        where = f"sections[{i}]"
        if not isinstance(section, t.Mapping) or not section.get("title"):
            raise ReportInputError(f"{where} must be a mapping with a title")
        unknown = sorted(str(k) for k in section if k not in ("title", "text", "items", "table"))
        if unknown:
            raise ReportInputError("{} has unknown keys: {}".format(where, ", ".join(unknown)))
        table = section.get("table")
        norm_table = None
        if table is not None:
            if not isinstance(table, t.Mapping):
                raise ReportInputError(f"{where}.table must be a mapping with columns and rows")
            columns = _text_list(table.get("columns"), where + ".table.columns")
            if not columns:
                raise ReportInputError(f"{where}.table.columns must not be empty")
            rows = []
            for j, row in enumerate(_sequence(table.get("rows")) if table.get("rows") is not None else []):
                cells = _text_list(row, f"{where}.table.rows[{j}]")
                if len(cells) != len(columns):
                    raise ReportInputError(
                        f"{where}.table.rows[{j}] has {len(cells)} cells, the table has {len(columns)} columns"
                    )
                rows.append(cells)
            norm_table = {"columns": columns, "rows": rows}
        text = section.get("text")
        out.append(
            {
                "title": str(section["title"]),
                "anchor": f"section-{i + 1}",
                "text": None if text in (None, "") else str(text),
                "items": _text_list(section.get("items"), where + ".items"),
                "table": norm_table,
            }
        )
    return out


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
        if row["problems"]:
            failing = "; ".join(
                "{}: {}{}".format(p["column"], p["failure_class"], " at {}".format(p["stage"]) if p["stage"] else "")
                for p in row["problems"]
            )
            detail = f"{detail} (failing: {failing})" if detail else f"failing: {failing}"
        lines.append(
            plain_text(
                "{}: {} - {}".format(row["host"], verdict, detail) if detail else "{}: {}".format(row["host"], verdict)
            )
        )
    return lines


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
        "comparison": _comparison(built),
        "sections": normalize_sections(sections),
        "summary": dict(built[-1]["totals"]),
        "legend": {
            "degraded_why": _DEGRADED_WHY or None,
            "row_states": [{"state": s, "label": STATE_LABELS[s]} for s in ROW_STATES],
            "cell_states": [{"state": s, "label": STATE_LABELS.get(s, "not probed")} for s in CELL_STATES],
        },
    }
    report["summary_lines"] = summary_lines(report)
    return report
