"""Renderers of the fleet report (plugins/plugin_utils/_report/_render.py and roles/epns_verify/templates)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _report_fixtures import fleet as recorded_fleet
from _report_fixtures import load
from ansible_collections.protectnet.epns.plugins.plugin_utils._report import _render as rr
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._model import build_report
from ansible_collections.protectnet.epns.plugins.plugin_utils._report._normalise import normalize_phases

PROXY = "http://proxy.lab:3128"

# What a hostile certificate, proxy or host name could carry.
SCRIPT = "<script>alert(1)</script>"
ATTR = '" onmouseover="alert(2)" x=\''
HOSTILE = (
    SCRIPT + " & ]]> | pipe \\| " + ATTR + " \x00\x07\x1b[31m\x7f é 漢字 🚀 \r\nnew line `code` *em* [l](javascript:x)"
)
HOSTILE_HOST = '<img src=x onerror=alert(3)>|agent\x0b"&'


def fleet() -> dict:
    return recorded_fleet(agent6={"unreachable": True, "msg": "Failed to connect to the host via ssh"})


def hostile_fleet() -> dict:
    results = fleet()
    bad = load("degraded")
    for path in bad["paths"]:
        if path["failure"]:
            path["failure"].update(message=HOSTILE, hint=HOSTILE, raw_error=HOSTILE)
        for attempt in path["attempts"]:
            attempt["proxy_status"] = attempt["proxy_status"] and HOSTILE
            if attempt["tls"]:
                attempt["tls"]["issuer"] = HOSTILE
    bad["paths"][1]["id"] = "443 " + HOSTILE  # a hostile column header too
    bad["verdict_reason"] = HOSTILE
    results[HOSTILE_HOST] = bad
    results["agent7"] = {"failed": True, "msg": HOSTILE}
    return results


def build(results=None, phases=None, **kwargs):
    inputs = normalize_phases(results=results, phases=phases, phase=kwargs.pop("phase", None))
    return build_report(inputs, **kwargs), inputs


def render_all(results=None, phases=None, **kwargs) -> dict:
    model, inputs = build(results, phases, **kwargs)
    return {fmt: rr.render(fmt, model, inputs) for fmt in rr.FORMATS}


# --------------------------------------------------------------------------------------------------
# HTML


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.cells: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag == "td":
            self.cells.append((dict(attrs).get("class") or "", ""))

    def handle_data(self, data):
        self.text.append(data)
        if self.cells:
            cls, text = self.cells[-1]
            self.cells[-1] = (cls, text + data)


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead", "tbody", "tfoot",
    "tr", "th", "td", "small", "div", "span", "code", "section", "ul", "li", "br",
    # issue 16: details on demand, the filter form and its one inline script (see test_report_html_view.py)
    "nav", "a", "details", "summary", "form", "label", "select", "option", "input", "output", "noscript", "script",
}  # fmt: skip
ALLOWED_ATTRS = {"lang", "charset", "name", "content", "http-equiv", "class", "title", "id",
                 "href", "data-col", "data-s", "data-c", "colspan", "hidden", "value", "type", "size", "open"}


def parse_html(text: str) -> _Collect:
    parser = _Collect()
    parser.feed(text)
    parser.close()
    return parser


def test_html_matrix_is_readable():
    out = render_all(fleet(), title="Fleet", generated_at="2025-01-01T00:00:00Z", phase="before firewall")["html"]
    assert out.startswith("<!DOCTYPE html>\n<html")
    page = parse_html(out)
    assert set(page.tags) <= ALLOWED_TAGS
    assert page.tags.count("script") == 1 and "link" not in page.tags  # self-contained, one inline script
    assert not any(name == "src" for name, _ in page.attrs)
    text = "".join(page.text)
    assert "before firewall" in text and "Generated 2025-01-01T00:00:00Z" in text
    tones = [cls for cls, _ in page.cells if cls.startswith("tone-")]
    # 7 hosts x 4 columns + 5 legend rows
    assert len(tones) == 7 * 4 + 5
    cells = dict(page.cells)
    assert any(c == "tone-failed" and "proxy_refused" in t and "at proxy_connect" in t for c, t in page.cells)
    assert any(c == "tone-fallback" and "proxy: HTTP/1.1 200 Connection established" in t for c, t in page.cells)
    assert any(c == "tone-auth" and "ok (proven by auth)" in t for c, t in page.cells)
    assert any(c == "tone-none" and "not probed" in t for c, t in page.cells)
    assert any("IPv6 2001:db8:0:1::10: tcp_unreachable at tcp" in t for _, t in page.cells)
    assert "tone-ok" in cells
    for css in (".tone-ok", ".tone-auth", ".tone-fallback", ".tone-failed", ".tone-none"):
        assert css + " {" in out
    assert "Failure classes seen" in text and "dns_no_answer" in text


def test_html_escapes_hostile_strings():
    out = render_all(hostile_fleet())["html"]
    page = parse_html(out)
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    assert {name for name, _ in page.attrs} <= ALLOWED_ATTRS  # no onmouseover/onerror: no attribute injection
    assert SCRIPT not in out and "<img" not in out
    text = "".join(page.text)
    assert SCRIPT in text  # shown as text, literally
    assert '<img src=x onerror=alert(3)>|agent"&' in text  # \x0b removed
    assert any(value and ATTR.strip() in value for _, value in page.attrs)  # inside a title attribute, inert
    assert re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", out) is None
    assert "é 漢字 🚀" in text


# --------------------------------------------------------------------------------------------------
# JUnit XML


def test_junit_counts():
    out = render_all(fleet(), generated_at="2025-01-01T00:00:00Z")["junit"]
    root = ET.fromstring(out.encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    cases = suites[0].findall("testcase")
    # per host a verdict case; per probed host one case per path it has (2 direct, +2 proxy for agent2)
    assert len(cases) == 7 + 6 * 2 + 2
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    assert len(failures) == int(suites[0].get("failures")) == int(root.get("failures"))
    assert len(errors) == int(suites[0].get("errors")) == 1
    assert int(suites[0].get("tests")) == len(cases) == int(root.get("tests"))
    # degraded + 2 unreachable verdicts; agent2 3 paths, agent3 2, agent4 2
    assert len(failures) == 3 + 3 + 2 + 2
    refused = next(c for c in cases if c.get("classname") == "agent2" and c.get("name") == f"8883 via {PROXY}")
    failure = refused.find("failure")
    assert failure.get("type") == "proxy_refused"
    assert failure.get("message").startswith("proxy_refused at proxy_connect: ")
    assert "hint: Allow CONNECT" in failure.text
    assert refused.get("time") == "3.001"
    error = next(c for c in cases if c.get("classname") == "agent6").find("error")
    assert error.get("type") == "not_probed"
    assert suites[0].get("timestamp") == "2025-01-01T00:00:00Z"


def test_junit_one_suite_per_phase():
    out = render_all(phases=[{"phase": "before", "results": fleet()}, {"phase": "after", "results": fleet()}])["junit"]
    root = ET.fromstring(out.encode())
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "EPNS reachability: before",
        "EPNS reachability: after",
    ]
    assert int(root.get("tests")) == 2 * (7 + 14)


def test_junit_survives_hostile_strings():
    out = render_all(hostile_fleet())["junit"]
    root = ET.fromstring(out.encode("utf-8"))  # parses: no illegal characters, nothing unescaped
    assert "<script" not in out and "<img" not in out
    names = {c.get("classname") for c in root.iter("testcase")}
    assert '<img src=x onerror=alert(3)>|agent"&' in names
    messages = [f.get("message") for f in root.iter("failure")] + [e.get("message") for e in root.iter("error")]
    assert any(SCRIPT in m and "]]>" in m for m in messages)
    bodies = [f.text for f in root.iter("failure") if f.text]
    assert any(SCRIPT in b and "é 漢字 🚀" in b for b in bodies)


# --------------------------------------------------------------------------------------------------
# JSON


def test_json_round_trips_and_can_rebuild_the_report():
    model, inputs = build(fleet(), phase="before", generated_at="2025-01-01T00:00:00Z")
    doc = json.loads(rr.render("json", model, inputs))
    assert doc["schema_version"] == 2
    assert doc["report"] == json.loads(json.dumps(model))
    assert doc["input"]["phases"][0]["results"]["agent2"] == load("degraded")
    # The saved input is a valid `phases` option: the same report comes back.
    again = build_report(normalize_phases(phases=doc["input"]["phases"]), generated_at="2025-01-01T00:00:00Z")
    assert again == model


def test_json_is_valid_with_hostile_and_odd_values():
    results = hostile_fleet()
    results["odd"] = {"verdict": "reachable", "paths": [], "elapsed_ms": float("nan"), "x": {1: b"bytes", "s": {1}}}
    results["creds"] = {"unreachable": True, "msg": "via http://u:p4ss@proxy:3128"}
    out = render_all(results)["json"]
    doc = json.loads(out)
    assert doc["input"]["phases"][0]["results"]["odd"]["elapsed_ms"] is None
    assert "p4ss" not in out
    assert SCRIPT in out  # JSON keeps data as data


# --------------------------------------------------------------------------------------------------
# Markdown


def _cells(line: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes."""
    cells, current, i = [], "", 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            current += line[i : i + 2]
            i += 2
            continue
        if ch == "|":
            cells.append(current)
            current = ""
        else:
            current += ch
        i += 1
    cells.append(current)
    return cells[1:-1]  # outside the leading and trailing pipe


def _tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_markdown_tables_keep_their_columns_with_hostile_data():
    out = render_all(hostile_fleet(), phase="x")["markdown"]
    tables = _tables(out)
    assert len(tables) >= 3
    for table in tables:
        widths = {len(_cells(line)) for line in table}
        assert len(widths) == 1, table
        assert table[0].endswith("|") and table[1].startswith("|---")
    matrix = next(table for table in tables if _cells(table[0])[0].strip() == "host")  # after the causes
    assert len(_cells(matrix[0])) == 3 + 5  # the hostile path id is a column of its own
    assert len(matrix) == 2 + 9  # header, rule, one line per host
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", out) is None
    assert "\\[l\\](javascript:x)" in out  # no link


def test_markdown_content():
    out = render_all(fleet(), title="Fleet", generated_at="2025-01-01T00:00:00Z")["markdown"]
    assert out.startswith("# Fleet\n\nGenerated 2025-01-01T00:00:00Z.\n")
    assert "**7** hosts: 3 reachable, 1 degraded" in out
    assert "| agent2 | degraded |" in out
    assert "proxy\\_refused at proxy\\_connect" in out
    assert "  - IPv6 2001:db8:0:1::10: tcp\\_unreachable at tcp (network is unreachable)" in out


def test_markdown_and_html_show_phases_and_changes():
    after = fleet()
    after["agent3"] = load("healthy")
    out = render_all(phases=[{"phase": "before", "results": fleet()}, {"phase": "after", "results": after}])
    md = out["markdown"]
    assert "## Changes between phases" in md and "## before" in md and "## after" in md
    assert "| agent3 | unreachable | reachable | yes; 8883 direct: failed -> ok; 443 direct: failed -> ok |" in md
    page = parse_html(out["html"])
    assert "Changes between phases" in "".join(page.text)
    assert [v for n, v in page.attrs if n == "id" and v and v.startswith("phase-")] == ["phase-1", "phase-2"]


def test_sections_are_rendered_and_escaped():
    sections = [
        {
            "title": "Firewall <b>",
            "text": "rule | x\nsecond",
            "items": [SCRIPT],
            "table": {"columns": ["a|b"], "rows": [[SCRIPT]]},
        }
    ]
    out = render_all(fleet(), sections=sections)
    assert "## Firewall &lt;b&gt;" in out["markdown"]
    assert "rule \\| x<br>second" in out["markdown"]
    assert [len(_cells(line)) for line in _tables(out["markdown"])[-1]] == [1, 1, 1]
    page = parse_html(out["html"])
    assert "Firewall <b>" in "".join(page.text) and "b" not in page.tags
    assert SCRIPT in "".join(page.text)


# --------------------------------------------------------------------------------------------------
# plumbing


def test_digest_ignores_timings_but_not_findings():
    results = fleet()
    base = rr.substance_digest("html", None, results, "t", None, None)
    retimed = json.loads(json.dumps(results))
    for result in retimed.values():
        if isinstance(result, dict) and "elapsed_ms" in result:
            result["elapsed_ms"] += 17
    assert rr.substance_digest("html", None, retimed, "t", None, None) == base
    renamed = {k + "x": v for k, v in results.items()}
    assert rr.substance_digest("html", None, renamed, "t", None, None) != base
    assert rr.substance_digest("markdown", None, results, "t", None, None) != base


def test_every_format_carries_its_digest_where_it_does_no_harm():
    model, inputs = build(fleet())
    for fmt in rr.FORMATS:
        marked = rr.with_digest(fmt, rr.render(fmt, model, inputs), "a" * 64)
        assert rr.digest_of(marked) == "a" * 64
        if fmt == "json":
            json.loads(marked)
        if fmt == "junit":
            ET.fromstring(marked)
    assert rr.digest_of("no digest here") is None

def test_unknown_format():
    model, inputs = build(fleet())
    with pytest.raises(ValueError, match="unknown report format 'pdf'; accepted: markdown, html, json, junit"):
        rr.render("pdf", model, inputs)


def test_override_template(tmp_path):
    (tmp_path / "mine.md.j2").write_text("{% include 'report.md.j2' %}\nhosts={{ report.summary.total }} {{ '|' }}\n")
    model, inputs = build(fleet())
    out = rr.render("markdown", model, inputs, str(tmp_path / "mine.md.j2"))
    assert out.endswith("hosts=7 \\|\n")  # the built-in templates stay reachable; expressions stay escaped
    assert out.startswith("# EPNS reachability")


def test_builtin_template_dir_is_the_roles():
    builtin = Path(rr.builtin_template_dir()).resolve()
    assert builtin == Path(__file__).resolve().parents[2] / "roles" / "epns_verify" / "templates"
    for name, _ext in rr.FORMATS.values():
        assert name is None or (builtin / name).is_file()

