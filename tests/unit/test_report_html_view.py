"""The HTML report as a reader meets it (roles/epns_verify/templates/report.html.j2, _report/_views.py): causes and
networks first, failing hosts before healthy ones and readable without JavaScript, one inline script allowed by its
CSP hash, no external asset, hostile strings inert, at most 1.5 KB per host at 10,000 hosts."""
from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from _report_fixtures import fleet as recorded_fleet
from _report_view_fixtures import build, render, synthetic
from ansible_collections.protectnet.epns.plugins.plugin_utils._report import _views

BUDGET_PER_HOST = 1536
HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror="document.title=1"> javascript:alert(1)'


class _Page(HTMLParser):
    """Tags, attributes, the script's text, and per matrix row its class, host and whether it has details."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.order: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.scripts: list[str] = []
        self.rows: list[dict] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.attrs.extend((k, v or "") for k, v in attrs)
        if found.get("id"):
            self.order.append(found["id"])
        if tag == "script":
            self.scripts.append("")
        if tag == "tr" and (found.get("class") or "").startswith("row-"):
            self.rows.append({"state": found["class"][4:], "host": None, "details": 0, "text": ""})
        elif tag == "details" and self.rows:
            self.rows[-1]["details"] += 1
        self._in.append(tag)

    def handle_endtag(self, tag):
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data
        elif self.rows:
            row = self.rows[-1]
            row["text"] += data
            if row["host"] is None and self._in and self._in[-1] == "th":
                row["host"] = data


def page_of(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def small() -> tuple:
    return synthetic(1000)


def test_sections_come_in_reading_order(small):
    model, inputs, _made = small
    page = page_of(render("html", model, inputs))
    wanted = ["causes", "egress", "coverage", "hosts", "phase-1", "legend"]
    assert [i for i in page.order if i in wanted] == wanted
    assert model["causes"] and model["egress"] and model["inferred"]


def test_only_the_inline_script_runs_and_nothing_is_fetched(small):
    model, inputs, _made = small
    html = render("html", model, inputs)
    page = page_of(html)
    assert len(page.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert csp == f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    assert digest == _views.SCRIPT_SHA256
    assert not [v for k, v in page.attrs if k in ("src", "srcset", "action", "formaction", "poster", "data")]
    assert all(v.startswith("#") for k, v in page.attrs if k == "href")
    assert not re.search(r"url\(|@import|<link|<iframe|<object|<embed", html)
    assert not re.search(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|fetch|XMLHttpRequest)\b",
                         page.scripts[0])


def test_without_javascript_failing_hosts_come_first_with_details(small):
    model, inputs, made = small
    page = page_of(render("html", model, inputs))
    states = [r["state"] for r in page.rows]
    first_healthy = states.index("reachable")
    assert "reachable" not in states[:first_healthy] and set(states[first_healthy:]) == {"reachable"}
    failing = {h for h, r in made.results.items() if r.get("verdict") != "reachable"}
    assert {r["host"] for r in page.rows if r["state"] != "reachable"} == failing
    for row in page.rows:
        if row["state"] in ("degraded", "unreachable"):
            assert row["details"] >= 1, row
    # reachable hosts with a failing path (they are in a cause) before the clean ones
    with_problems = [h for h, r in made.results.items()
                     if r.get("verdict") == "reachable" and not all(p["ok"] for p in r["paths"])]
    hosts = [r["host"] for r in page.rows]
    assert with_problems and max(hosts.index(h) for h in with_problems) < len(hosts) - len(
        [r for r in model["phases"][0]["rows"] if r["state"] == "reachable" and not r["problems"]])
    healthy = [r for r in page.rows if r["host"] not in set(with_problems) and r["state"] == "reachable"]
    # a healthy host is its name, its verdict and "ok"/"not tested" per path; IPv6 noise may add a note
    assert sum(1 for r in healthy if r["details"] == 0) >= 0.9 * len(healthy)
    assert all(r["text"].startswith(r["host"] + "reachable") for r in healthy)


def test_many_proxies_share_one_column_per_port(small):
    model, _inputs, made = small
    proxies = {s["proxy"] for s in made.sites if s["proxy"]}
    assert len(proxies) > _views.MAX_PROXY_COLUMNS
    # the model itself groups them (a column per proxy would make the matrix hosts x proxies)
    assert [c["id"] for c in model["phases"][0]["columns"]] == ["8883 direct", "443 direct", "8883 via proxy",
                                                                "443 via proxy"]
    view = _views.phase_view(model["phases"][0])
    assert [s["key"] for s in view["slots"]] == ["8883 direct", "443 direct", "8883 via proxy", "443 via proxy"]
    proxied = next(item for item in view["rows"] if item["cells"][2]["state"] != "not_tested")
    assert proxied["cells"][2]["via"] in proxies
    tested = sum(t["tested"] for t in model["phases"][0]["column_totals"])
    assert sum(s["tested"] for s in view["slots"]) == tested


def test_a_single_proxy_keeps_its_own_columns():
    model, inputs = build(recorded_fleet())
    html = render("html", model, inputs)
    assert '<th data-col="8883 via http://proxy.lab:3128">' in html
    assert "each host's proxy" not in html


def test_inferred_devices_are_marked_and_never_a_verdict_or_a_pass(small):
    model, inputs, _made = small
    html = render("html", model, inputs)
    page = page_of(html)
    inferred = {i["host"] for i in model["inferred"]}
    # a device the play reached but could not probe stays a "not probed" row; the others are no row at all
    rows = {r["host"]: r["state"] for r in model["phases"][-1]["rows"]}
    assert inferred and {rows[h] for h in inferred if h in rows} <= {"not_probed"}
    assert inferred - set(rows), "the synthetic fleet has ESET devices outside the play"
    assert {r["state"] for r in page.rows if r["host"] in inferred} <= {"not_probed"}
    lines = re.findall(r'<tr class="inferred"><td>([^<]+)</td>.*?</tr>', html)
    assert set(lines) == inferred
    assert all("inferred: " in line for line in re.findall(r'<tr class="inferred">.*?</tr>', html))
    root = ET.fromstring(render("junit", model, inputs).encode())
    verdicts = {c.get("classname"): c for c in root.iter("testcase")
                if c.get("classname") in inferred and c.get("name") == "verdict"}
    assert set(verdicts) == inferred
    for case in verdicts.values():
        said = case.find("skipped") if case.find("skipped") is not None else case.find("error")
        assert said is not None and case.find("failure") is None, ET.tostring(case)
        assert "inferred, not probed" in said.text
    outside = [verdicts[h] for h in inferred - set(rows)]
    assert all(c.find("skipped") is not None for c in outside)
    suite = root.find("testsuite")
    assert int(suite.get("skipped")) == len(list(suite.iter("skipped")))
    assert int(suite.get("tests")) == len(list(suite.iter("testcase")))


def test_hostile_strings_in_the_new_sections_stay_text(small):
    model, inputs, _made = small
    model["causes"][0].update(title=HOSTILE, fix=HOSTILE, host_names=[HOSTILE])
    model["egress"][0].update(label=HOSTILE, proxy=HOSTILE)
    model["inferred"][0].update(text=HOSTILE, host=HOSTILE)
    model["warnings"] = [{"kind": "outside_published", "host": HOSTILE, "address": "192.0.2.1", "text": HOSTILE}]
    html = render("html", model, inputs)
    assert "<img" not in html and "window.__pwned=1</script>" not in html
    page = page_of(html)
    assert {k for k, _v in page.attrs if k.startswith("on")} == set()
    assert len(page.scripts) == 1
    assert html.count("&lt;script&gt;window.__pwned=1&lt;/script&gt;&#34;&gt;&lt;img") >= 5


def test_html_stays_under_the_budget_at_10000_hosts():
    model, inputs, _made = synthetic(10000)
    html = render("html", model, inputs)
    per_host = len(html.encode("utf-8")) / 10000
    assert per_host <= BUDGET_PER_HOST, f"{per_host:.0f} bytes of HTML per host, budget {BUDGET_PER_HOST}"
    page = page_of(html)
    assert len(page.rows) == 10000 and len(page.scripts) == 1
