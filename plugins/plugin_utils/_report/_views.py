# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# What the templates need beyond the model, computed once in Python rather than in Jinja loops: the compact matrix
# (one column per kind of path, whatever proxy each host uses), the rows in reading order (failing hosts first), the
# names of egress groups and causes by id, and the page's one inline script with its CSP hash.
# Every step is a pass over rows or cells: nothing loops over hosts inside a loop over hosts.
from __future__ import annotations

import base64
import hashlib
import typing as t

from markupsafe import Markup

from ._states import CELL_NOT_PROBED, CELL_NOT_TESTED, DEGRADED, NOT_PROBED, REACHABLE, UNREACHABLE

# Reading order of the matrix: what needs work first, healthy hosts last.
ROW_ORDER = (UNREACHABLE, DEGRADED, NOT_PROBED, REACHABLE)
# Above this many distinct proxies, proxy paths share one column per port ("8883 via proxy"): a fleet whose sites
# each have their own proxy would otherwise get two columns per site, nearly all "not tested".
MAX_PROXY_COLUMNS = 2

# Filters (verdict, failure class, failing path, text) and sorting by any column. It reads the page only through
# textContent, class names and data attributes, and writes only the hidden flag, row order and aria-sort: no markup
# is ever built from the report's strings. The CSP allows this script by its hash and nothing else.
FILTER_SCRIPT = """
(function () {
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.hidden = false;
  var field = function (name) { return form.querySelector("[name=" + name + "]"); };
  var verdict = field("verdict"), klass = field("class"), path = field("path"), text = field("text");
  var shown = document.getElementById("shown");
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.matrix"));
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  tables.forEach(function (table) {
    table.rowsAll = Array.prototype.slice.call(table.tBodies[0].rows);
    table.rowsAll.forEach(function (row) { row.searchText = row.textContent.toLowerCase(); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, th, index); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(table, th, index); } });
    });
  });
  function sortKey(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var summary = cell.querySelector("summary");
    return cell.getAttribute("data-s") || (summary || cell).textContent;
  }
  function sortBy(table, th, index) {
    var down = th.getAttribute("aria-sort") === "ascending";
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var keyed = table.rowsAll.map(function (row, i) { return [sortKey(row, index), i, row]; });
    keyed.sort(function (a, b) { return (down ? -1 : 1) * collator.compare(a[0], b[0]) || a[1] - b[1]; });
    var body = table.tBodies[0];
    keyed.forEach(function (k) { body.appendChild(k[2]); });
    table.rowsAll = keyed.map(function (k) { return k[2]; });
  }
  function columnOf(table, key) {
    var cells = table.tHead.rows[0].cells;
    for (var i = 0; i < cells.length; i++) { if (cells[i].getAttribute("data-col") === key) { return i; } }
    return -1;
  }
  function failed(cell, cls) {
    return !!cell && cell.hasAttribute("data-c") && (!cls || cell.getAttribute("data-c") === cls);
  }
  function keep(row, column) {
    var v = verdict.value, cls = klass.value, needle = text.value.trim().toLowerCase();
    if (v === "failing" ? row.classList.contains("row-reachable") : v && !row.classList.contains("row-" + v)) {
      return false;
    }
    if (path.value) {
      if (!failed(column < 0 ? null : row.cells[column], cls)) { return false; }
    } else if (cls && !Array.prototype.some.call(row.cells, function (c) { return failed(c, cls); })) {
      return false;
    }
    return !needle || row.searchText.indexOf(needle) >= 0;
  }
  function apply() {
    var count = 0;
    tables.forEach(function (table) {
      var column = path.value ? columnOf(table, path.value) : -1;
      table.rowsAll.forEach(function (row) {
        row.hidden = !keep(row, column);
        if (!row.hidden) { count++; }
      });
    });
    shown.textContent = count + " rows shown";
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  [verdict, klass, path].forEach(function (e) { e.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  apply();
})();
"""
SCRIPT_SHA256 = base64.b64encode(hashlib.sha256(FILTER_SCRIPT.encode("utf-8")).digest()).decode("ascii")


def _slot_key(column: t.Mapping[str, t.Any], grouped: bool) -> str:
    if not grouped or column.get("proxy") is None:
        return str(column["id"])
    port = column.get("port")
    return "{} via proxy".format(port if port is not None else column["id"])


def matrix_slots(phase: t.Mapping[str, t.Any]) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.List[int]]:
    """The compact matrix's columns and, for each of the phase's columns, the index of the slot it lands in."""
    columns = phase["columns"]
    proxies = {c.get("proxy") for c in columns if c.get("proxy") is not None}
    grouped = len(proxies) > MAX_PROXY_COLUMNS
    slots: t.List[t.Dict[str, t.Any]] = []
    by_key: t.Dict[str, int] = {}
    slot_of: t.List[int] = []
    for column in columns:
        key = _slot_key(column, grouped)
        if key not in by_key:
            by_key[key] = len(slots)
            slots.append({"key": key, "role": column.get("role"), "server": bool(column.get("server")),
                          "proxy": None if grouped else column.get("proxy"),
                          "grouped": (grouped and key != column["id"]) or bool(column.get("grouped")),
                          "columns": []})
        slots[by_key[key]]["columns"].append(column["id"])
        slot_of.append(by_key[key])
    return slots, slot_of


def _row_cells(row: t.Mapping[str, t.Any], columns: t.Sequence[t.Mapping[str, t.Any]], slot_of: t.Sequence[int],
               width: int) -> t.List[t.Dict[str, t.Any]]:
    """One cell per slot: the host's tested cell there (the first, when a host has two proxies of one port), else
    its not-tested/not-probed cell. A grouped cell says which proxy it went through."""
    placed: t.List[t.Optional[t.Dict[str, t.Any]]] = [None] * width
    extra: t.List[t.List[str]] = [[] for _slot in range(width)]
    for column, cell, slot in zip(columns, row["cells"], slot_of):
        tested = cell["state"] not in (CELL_NOT_TESTED, CELL_NOT_PROBED)
        current = placed[slot]
        if current is None or (tested and current["state"] in (CELL_NOT_TESTED, CELL_NOT_PROBED)):
            placed[slot] = dict(cell, via=(cell.get("proxy") or column.get("proxy")) if tested else None,
                                column=column["id"])
        elif tested:
            extra[slot].append(str(column["id"]))
    return [dict(cell or {}, also=others) for cell, others in zip(placed, extra)]


def _ordered(rows: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Mapping[str, t.Any]]:
    """Failing hosts first; a reachable host with a failing path (a cause lists it) before the clean ones."""
    buckets: t.Dict[str, t.List[t.Mapping[str, t.Any]]] = {state: [] for state in ROW_ORDER[:-1]}
    buckets["reachable_with_problems"] = []
    buckets[REACHABLE] = []
    for row in rows:
        state = row["state"]
        if state == REACHABLE and row.get("problems"):
            state = "reachable_with_problems"
        buckets.setdefault(state, []).append(row)
    return [row for rows_of_state in buckets.values() for row in rows_of_state]


def phase_view(phase: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """A phase as the compact matrix shows it: slots, and rows (failing first) with one cell per slot."""
    slots, slot_of = matrix_slots(phase)
    grouped = any(s["grouped"] for s in slots)
    rows = [
        {"row": row, "cells": _row_cells(row, phase["columns"], slot_of, len(slots)) if grouped else
         [dict(cell, via=cell.get("proxy") if column.get("grouped") else None, column=column["id"], also=[])
          for column, cell in zip(phase["columns"], row["cells"])]}
        for row in _ordered(phase["rows"])
    ]
    for slot in slots:
        slot.update(working=0, tested=0)
    for totals, index in zip(phase.get("column_totals") or (), slot_of):
        slots[index]["working"] += totals.get("working") or 0
        slots[index]["tested"] += totals.get("tested") or 0
    failing = sum(1 for r in phase["rows"] if r["state"] != REACHABLE)
    return {"slots": slots, "rows": rows, "failing": failing, "healthy": len(phase["rows"]) - failing}


def _by_id(items: t.Any, field: str) -> t.Dict[str, str]:
    return {str(i.get("id")): str(i.get(field) or i.get("id")) for i in items or () if isinstance(i, t.Mapping)}


def report_view(report: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """Everything the HTML and Markdown templates derive from the model, in one linear pass per phase."""
    phases = [phase_view(p) for p in report["phases"]]
    classes = sorted({fc["class"] for p in report["phases"] for fc in p.get("failure_classes") or ()})
    paths: t.List[str] = []
    for view in phases:
        paths.extend(s["key"] for s in view["slots"] if s["key"] not in paths)
    return {
        "phases": phases,
        "classes": classes,
        "paths": paths,
        "egress_labels": _by_id(report.get("egress"), "label"),
        "cause_titles": _by_id(report.get("causes"), "title"),
        "script": Markup(FILTER_SCRIPT),  # noqa: S704 - a constant of this file, never data
        "script_hash": SCRIPT_SHA256,
    }


def human_seconds(value: t.Any) -> str:
    """A duration as a person reads it: 90000 -> "1 d 1 h", 150 -> "2 min 30 s"."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return "unknown"
    parts: t.List[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def register(env: t.Any) -> None:
    """The globals and filters the built-in templates use (a user's own template may use them too)."""
    env.globals["report_view"] = report_view
    env.filters["human_seconds"] = human_seconds
