# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Probe results and the sections other modules add, turned into records: one cell per path, one row per host,
# the columns of a phase, with every string from the input redacted and every shape checked (ReportInputError).
from __future__ import annotations

import typing as t

from ._states import (
    CELL_FAILED,
    CELL_NOT_PROBED,
    CELL_NOT_TESTED,
    CELL_OK,
    CELL_PROVEN_BY_AUTH,
    DEGRADED,
    NOT_PROBED,
    SERVER_ROLE,
    STATE_LABELS,
    TONE_AUTH,
    TONE_FAILED,
    TONE_FALLBACK,
    TONE_NONE,
    TONE_OK,
    VERDICTS,
)
from ._text import plain_data, plain_text, redact_url_credentials


class ReportInputError(ValueError):
    """The input cannot be turned into a report (wrong shape); the message says which part."""


def optional_text(value: t.Any) -> t.Optional[str]:
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


def _failure(value: t.Any) -> t.Optional[t.Dict[str, t.Any]]:
    if not isinstance(value, t.Mapping):
        return None
    return {
        "class": optional_text(value.get("class")) or "unknown",
        "stage": optional_text(value.get("stage")),
        "message": optional_text(value.get("message")),
        "raw_error": optional_text(value.get("raw_error")),
        "hint": optional_text(value.get("hint")),
        "elapsed_ms": _opt_int(value.get("elapsed_ms")),
    }


def _attempt(value: t.Any) -> t.Dict[str, t.Any]:
    raw = _mapping(value)
    failure = _failure(raw.get("failure"))
    tls = _mapping(raw.get("tls"))
    return {
        "address": optional_text(raw.get("address")),
        "family": optional_text(raw.get("family")),
        "ok": bool(raw.get("ok")),
        "proven_by_auth": bool(raw.get("proven_by_auth")),
        "failure": failure,
        "stages": [
            {
                "name": optional_text(_mapping(s).get("name")),
                "ok": bool(_mapping(s).get("ok")),
                "elapsed_ms": _opt_int(_mapping(s).get("elapsed_ms")),
            }
            for s in _sequence(raw.get("stages"))
        ],
        "proxy_status": optional_text(raw.get("proxy_status")),
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
        "note": optional_text(path.get("note")),
        "address_notes": [_attempt_note(a) for a in attempts] if mixed else [],
        "proxy_status": _first(a["proxy_status"] for a in deciding),
        "tls_issuer": _first(a["tls_issuer"] for a in deciding),
        "tls_subject": _first(a["tls_subject"] for a in deciding),
        "proxy": optional_text(path.get("proxy")),
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
        "proxy": None,
        "attempts": [],
    }


def _path_id(path: t.Mapping[str, t.Any]) -> t.Optional[str]:
    return optional_text(path.get("id"))


def _not_probed_reason(raw: t.Any) -> str:
    if raw is None:
        return "no probe result"
    if not isinstance(raw, t.Mapping):
        return f"the probe result is not a mapping ({type(raw).__name__})"
    msg = optional_text(raw.get("msg"))
    if raw.get("unreachable"):
        return f"host unreachable: {msg}" if msg else "host unreachable"
    if raw.get("skipped"):
        reason = optional_text(raw.get("skip_reason")) or msg
        return f"probe skipped: {reason}" if reason else "probe skipped"
    if raw.get("failed"):
        return f"probe failed: {msg}" if msg else "probe failed without a message"
    if not raw:
        return "no probe result"
    if "verdict" in raw:
        return "unknown verdict {!r}".format(plain_text(raw.get("verdict")))
    return "the probe result has no verdict"


def _is_probe_result(raw: t.Any) -> bool:
    return isinstance(raw, t.Mapping) and raw.get("verdict") in VERDICTS


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


# Up to this many proxies in a phase (the HTML view's rule too), each proxy has its own columns. Beyond it (a proxy
# per site), a column per proxy would make the matrix hosts x proxies, almost all "not tested": then proxy paths
# share columns by their place among the host's own proxies ("8883 via proxy"), and each cell names its proxy.
MAX_PROXY_COLUMNS = 2


def _column_key(column: t.Mapping[str, t.Any], rank: int) -> t.Tuple[t.Any, ...]:
    """rank: -1 for a direct path, else the proxy's place (in the phase, or among the host's own when grouped)."""
    role, port = column["role"], column["port"]
    return (
        1 if role == SERVER_ROLE else 0,  # the server paths after the EPNS paths
        0 if rank < 0 else 1,
        rank,
        {"primary": 0, "fallback": 1}.get(role or "", 2),
        port if port is not None else 1 << 17,
    )


def _grouped_id(path: t.Mapping[str, t.Any], rank: int) -> t.Optional[str]:
    """The shared column of a proxy path: port, server or not, and the proxy's place among the host's proxies."""
    port = _opt_int(path.get("port"))
    if port is None:
        return _path_id(path)
    server = " server" if optional_text(path.get("role")) == SERVER_ROLE else ""
    return f"{port}{server} via proxy" + (f" {rank + 1}" if rank else "")


def _keyed_paths(raw: t.Mapping[str, t.Any], grouped: bool) -> t.List[t.Tuple[str, t.Mapping[str, t.Any]]]:
    """(column id, path) for each path of a result, first path per id; grouped: proxy paths by proxy rank."""
    ranks: t.Dict[str, int] = {}
    keyed: t.Dict[str, t.Mapping[str, t.Any]] = {}
    for path in _all_paths(raw):
        proxy = optional_text(path.get("proxy")) if grouped else None
        if proxy is None:
            pid = _path_id(path)
        else:
            pid = _grouped_id(path, ranks.setdefault(proxy, len(ranks)))
        if pid is not None and pid not in keyed:
            keyed[pid] = path
    return list(keyed.items())


def _proxies_in(probed: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, int]:
    order: t.Dict[str, int] = {}
    for raw in probed:
        for path in _all_paths(raw):
            proxy = optional_text(path.get("proxy"))
            if proxy is not None:
                order.setdefault(proxy, len(order))
    return order


def phase_columns(hosts: t.Sequence[str], results: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    """The union of path ids over all hosts, in the schema's order (proxy columns shared past MAX_PROXY_COLUMNS)."""
    probed = [results[host] for host in hosts if _is_probe_result(results[host])]
    proxy_order = _proxies_in(probed)
    grouped = len(proxy_order) > MAX_PROXY_COLUMNS
    seen: t.Dict[str, t.Dict[str, t.Any]] = {}
    sort_keys: t.Dict[str, t.Tuple[t.Any, ...]] = {}
    for raw in probed:
        ranks: t.Dict[str, int] = {}
        for pid, path in _keyed_paths(raw, grouped):
            proxy = optional_text(path.get("proxy"))
            rank = -1 if proxy is None else ranks.setdefault(proxy, len(ranks)) if grouped else proxy_order[proxy]
            if pid in seen:
                continue
            seen[pid] = {
                "id": pid,
                "port": _opt_int(path.get("port")),
                "role": optional_text(path.get("role")),
                "proxy": None if grouped else proxy,
                "server": optional_text(path.get("role")) == SERVER_ROLE,
                "grouped": grouped and proxy is not None,
            }
            sort_keys[pid] = (*_column_key(seen[pid], rank), len(sort_keys))
    ordered = sorted(seen.values(), key=lambda c: sort_keys[c["id"]])
    return [dict(c, index=i) for i, c in enumerate(ordered)]


def host_row(host: str, raw: t.Any, columns: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
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
            "server_verdict": None,
            "server_verdict_reason": None,
        }
    state = str(raw["verdict"])
    by_id = dict(_keyed_paths(raw, any(c.get("grouped") for c in columns)))
    cells = []
    for column in columns:
        found = by_id.get(column["id"])
        # A server path's colour is its own: the EPNS verdict (degraded) says nothing about it.
        row_state = "" if column.get("server") else state
        cells.append(_cell_from_path(found, row_state) if found is not None else _empty_cell(CELL_NOT_TESTED))
    problems = [
        {"column": column["id"], "failure_class": cell["failure_class"], "stage": cell["stage"],
         "server": bool(column.get("server"))}
        for column, cell in zip(columns, cells)
        if cell["state"] == CELL_FAILED
    ]
    return {
        "host": host,
        "state": state,
        "label": STATE_LABELS[state],
        "verdict": state,
        "verdict_reason": optional_text(raw.get("verdict_reason")) or "",
        "working_fallback": optional_text(raw.get("working_fallback")),
        "elapsed_ms": _opt_int(raw.get("elapsed_ms")),
        "dns": _dns_summary(raw),
        "cells": cells,
        "problems": problems,
        "server_verdict": optional_text(raw.get("server_verdict")),
        "server_verdict_reason": optional_text(raw.get("server_verdict_reason")),
    }


def _all_paths(raw: t.Mapping[str, t.Any]) -> t.List[t.Mapping[str, t.Any]]:
    """The EPNS paths, then the ESET PROTECT server paths (absent in results of earlier releases)."""
    return [_mapping(p) for p in [*_sequence(raw.get("paths")), *_sequence(raw.get("server_paths"))]]


def _check_results(results: t.Any, where: str) -> t.Dict[str, t.Any]:
    if not isinstance(results, t.Mapping):
        raise ReportInputError(f"{where} must be a mapping of host name to probe result, not {type(results).__name__}")
    return {str(host): plain_data(value) for host, value in results.items()}


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
