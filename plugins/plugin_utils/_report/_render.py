# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Renders the fleet report model (_model) to Markdown, HTML, JSON and JUnit XML.
#
# Escaping is done here, once per format, so a template cannot forget it:
# - HTML and XML: autoescape on (select_autoescape), and characters that XML 1.0 forbids are removed first.
# - Markdown: every {{ expression }} goes through markdown_escape (no HTML, no table-breaking | or newline).
# - JSON: json.dumps, no template.
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import typing as t

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ._states import CELL_FAILED, CELL_NOT_PROBED, CELL_NOT_TESTED, NOT_PROBED, REACHABLE
from ._text import redact_url_credentials
from ._views import register as register_views

INFERRED_NOTE = "inferred, not probed"

# format -> template file name (None: rendered without a template) and file extension.
FORMATS: t.Dict[str, t.Tuple[t.Optional[str], str]] = {
    "markdown": ("report.md.j2", "md"),
    "html": ("report.html.j2", "html"),
    "json": (None, "json"),
    "junit": ("report.junit.xml.j2", "junit.xml"),
}

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. C1 controls are legal
# XML but never wanted in a report, so they go too.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_LEADING = re.compile(r"^([#>+=-])")


def builtin_template_dir() -> str:
    """The role's templates, found from this file: plugins/plugin_utils/_report -> roles/epns_verify/templates."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "roles", "epns_verify", "templates"))


def strip_illegal_xml(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _xml_finalize(value: t.Any) -> t.Any:
    if value is None:
        return ""
    if isinstance(value, Markup):
        return Markup(strip_illegal_xml(str(value)))  # noqa: S704 - already markup; removing characters keeps it safe
    if isinstance(value, (bool, int, float)):
        return value
    return strip_illegal_xml(str(value))


def markdown_escape(value: t.Any) -> str:
    """Text that stays inside one Markdown table cell and shows literally: no HTML, no markup, no |."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return str(value)
    text = strip_illegal_xml(str(value).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LEADING.sub(r"\\\1", text)
    return text.replace("\n", "<br>")


def _ms(value: t.Any) -> str:
    return "" if value is None else f"{value} ms"


def _seconds(value: t.Any) -> str:
    return "%.3f" % ((value or 0) / 1000.0)


def _environment(fmt: str, search_path: t.Sequence[str]) -> Environment:
    common: t.Dict[str, t.Any] = {
        "loader": FileSystemLoader(list(search_path)),
        "undefined": StrictUndefined,
        "keep_trailing_newline": True,
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    if fmt == "markdown":
        env = Environment(autoescape=False, finalize=markdown_escape, **common)  # noqa: S701 - escaped by finalize
    else:
        env = Environment(
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "xml", "html.j2", "xml.j2"),
                default_for_string=True,
                default=True,
            ),
            finalize=_xml_finalize,
            **common,
        )
    env.filters["ms"] = _ms
    env.filters["seconds"] = _seconds
    register_views(env)
    return env


def _json_key(key: str) -> str:
    return redact_url_credentials(key) if "@" in key else key


def _jsonable(value: t.Any) -> t.Any:
    """Plain JSON data in one pass: URL credentials redacted, non-finite floats null, anything else a string."""
    kind = type(value)
    # Exact types first: plain dicts, lists and strings are nearly all of a report, and isinstance against
    # typing.Mapping is the slow abc path.
    if kind is str:
        return redact_url_credentials(value) if "@" in value else value
    if value is None or kind is bool or kind is int:
        return value
    if kind is dict or (kind is not list and isinstance(value, t.Mapping)):
        return {_json_key(str(k)): _jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        # str.__str__ gives an exact str: a subclass's own __str__ (ansible-core 2.16's unsafe text) may return
        # the subclass again, and str(value) would then recurse without end.
        return _jsonable(str.__str__(value))
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    return _jsonable(str.__str__(str(value)))


def render_json(report: t.Mapping[str, t.Any], inputs: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    """The full model plus the raw results (credentials in URLs redacted), re-usable as ``phases`` input.

    One line per document, keys sorted: the C encoder keeps a large fleet fast (indenting is pure Python).
    """
    document = {
        "schema_version": report["schema_version"],
        "report": report,
        "input": {"phases": [{"phase": p.get("phase"), "results": p["results"]} for p in inputs]},
    }
    return json.dumps(_jsonable(document), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _verdict_case(row: t.Mapping[str, t.Any], inferred: t.Optional[t.Mapping[str, t.Any]] = None
                  ) -> t.Dict[str, t.Any]:
    """A host's 'verdict' case: a failure when it is not reachable; not probed, an error, or skipped when the probe
    was skipped on purpose (an OS it does not run on). What was inferred for it goes with it, never as a pass."""
    case: t.Dict[str, t.Any] = {
        "classname": row["host"],
        "name": "verdict",
        "time": row["elapsed_ms"],
        "failure": None,
        "error": None,
        "skipped": None,
    }
    if row["state"] == NOT_PROBED:
        reason = row["verdict_reason"]
        text = reason + (f"\n{INFERRED_NOTE}: {inferred['text']}" if inferred else "")
        kind = "skipped" if reason.startswith("probe skipped") else "error"
        case[kind] = {"type": NOT_PROBED, "message": reason, "text": text}
    elif row["state"] != REACHABLE:
        text = row["verdict_reason"]
        if row["working_fallback"]:
            text += "\nworking fallback: {}".format(row["working_fallback"])
        case["failure"] = {"type": row["state"], "message": row["verdict_reason"], "text": text}
    return case


def _inferred_case(line: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """An ESET device the play never reached: skipped, saying what was inferred."""
    message = f"not probed; {INFERRED_NOTE}: {line['text']}"
    return {"classname": line["host"], "name": "verdict", "time": 0, "failure": None, "error": None,
            "skipped": {"type": "inferred", "message": message,
                        "text": message + ". Never a verdict; says nothing about the device's own host firewall."}}


def _path_case(
    row: t.Mapping[str, t.Any], column: t.Mapping[str, t.Any], cell: t.Mapping[str, t.Any]
) -> t.Dict[str, t.Any]:
    """One case per path a host has: a failure with everything the probe said when the path failed."""
    case: t.Dict[str, t.Any] = {
        "classname": row["host"],
        "name": column["id"],
        "time": cell["elapsed_ms"],
        "failure": None,
        "error": None,
        "skipped": None,
    }
    if cell["state"] == CELL_FAILED:
        lines = [
            "class: {}".format(cell["failure_class"]),
            "stage: %s" % (cell["stage"] or "-"),
            "message: %s" % (cell["message"] or "-"),
        ]
        for key in ("raw_error", "hint", "proxy_status", "tls_issuer", "note"):
            if cell[key]:
                lines.append("{}: {}".format(key.replace("_", " "), cell[key]))
        lines.extend(f"address: {note}" for note in cell["address_notes"])
        case["failure"] = {
            "type": cell["failure_class"],
            "message": "{} at {}: {}".format(cell["failure_class"], cell["stage"] or "-", cell["message"] or "-"),
            "text": "\n".join(lines),
        }
    return case


def junit_view(report: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """Test suites for JUnit: one per phase; per host a 'verdict' case, then one case per path it has."""
    suites = []
    inferred = {line["host"]: line for line in report.get("inferred") or []}
    for phase in report["phases"]:
        last = phase is report["phases"][-1]
        cases = []
        for row in phase["rows"]:
            cases.append(_verdict_case(row, inferred.get(row["host"]) if last else None))
            cases.extend(
                _path_case(row, column, cell)
                for column, cell in zip(phase["columns"], row["cells"])
                if cell["state"] not in (CELL_NOT_TESTED, CELL_NOT_PROBED)
            )
        if last:
            rows = {row["host"] for row in phase["rows"]}
            cases.extend(_inferred_case(line) for host, line in inferred.items() if host not in rows)
        suites.append(
            {
                "name": "{}: {}".format(report["title"], phase["title"])
                if len(report["phases"]) > 1 or phase["phase"]
                else report["title"],
                "tests": len(cases),
                "failures": sum(1 for c in cases if c["failure"]),
                "errors": sum(1 for c in cases if c["error"]),
                "skipped": sum(1 for c in cases if c["skipped"]),
                "time": sum(r["elapsed_ms"] or 0 for r in phase["rows"]),
                "cases": cases,
            }
        )
    return {
        "name": report["title"],
        "tests": sum(s["tests"] for s in suites),
        "failures": sum(s["failures"] for s in suites),
        "errors": sum(s["errors"] for s in suites),
        "skipped": sum(s["skipped"] for s in suites),
        "suites": suites,
    }


def render(
    fmt: str,
    report: t.Mapping[str, t.Any],
    inputs: t.Sequence[t.Mapping[str, t.Any]],
    template_path: t.Optional[str] = None,
) -> str:
    """Render one format. ``template_path`` overrides the built-in template of that format."""
    if fmt not in FORMATS:
        raise ValueError("unknown report format {!r}; accepted: {}".format(fmt, ", ".join(FORMATS)))
    name, _ext = FORMATS[fmt]
    if name is None:
        return render_json(report, inputs)
    search_path = [builtin_template_dir()]
    if template_path:
        search_path.insert(0, os.path.dirname(os.path.abspath(template_path)))
        name = os.path.basename(template_path)
    env = _environment(fmt, search_path)
    context: t.Dict[str, t.Any] = {"report": report}
    if fmt == "junit":
        context["junit"] = junit_view(report)
    return env.get_template(name).render(**context)


# Keys whose values differ on every run without the network having changed: timings, ephemeral local ports,
# random MQTT client ids and the time of writing.
VOLATILE_KEYS = frozenset({"elapsed_ms", "local", "client_id", "generated_at"})
_DIGEST_LABEL = "epns-report-digest"
_DIGEST_FOUND = re.compile(_DIGEST_LABEL + r"[:\"\s]+([0-9a-f]{64})")


_PLAIN_SCALARS = frozenset({str, int, bool, float, type(None)})


def _without_volatile(value: t.Any) -> t.Any:
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is dict or (kind is not list and isinstance(value, t.Mapping)):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if kind is list or kind is tuple:
        return [_without_volatile(v) for v in value]
    return value


def substance_digest(*parts: t.Any) -> str:
    """A digest of what a report says, leaving out what changes on every run (VOLATILE_KEYS).

    A part may itself be such a digest: the action digests the results once and each format's template on top.
    """
    text = json.dumps(_jsonable(_without_volatile(list(parts))), sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# render_json writes these keys, sorted: the digest's key sorts before all of them, so it goes first.
_JSON_DOCUMENT_START = '{"input": '


def with_digest(fmt: str, content: str, digest: str) -> str:
    """The rendered file carrying its substance digest, in a way its format ignores."""
    if fmt == "json":
        if content.startswith(_JSON_DOCUMENT_START):
            # The same bytes json.dumps(sort_keys=True) gives with the key added, without parsing 10,000 hosts again.
            return "{" + json.dumps(_DIGEST_LABEL) + ": " + json.dumps(digest) + ", " + content[1:]
        document = json.loads(content)
        document[_DIGEST_LABEL] = digest
        return json.dumps(document, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    return content + f"<!-- {_DIGEST_LABEL}: {digest} -->\n"


def digest_of(existing: str) -> t.Optional[str]:
    found = _DIGEST_FOUND.search(existing)
    return found.group(1) if found else None
